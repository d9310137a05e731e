/*
 * json: the data helpers of quorumctl — a streaming JSON writer to stdout
 * (for --json and dump), a small JSON reader (for load), base64, a UTF-8
 * check that decides how data is carried in JSON, and reading a file whole.
 *
 * The writer tracks nesting in a fixed stack (JW_DEPTH levels; deeper
 * nesting is a bug in the caller, caught by an assert). The reader builds a
 * tree; it accepts RFC 8259 JSON, rejects trailing garbage, and bounds its
 * nesting at JV_DEPTH so hostile input cannot exhaust the stack.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* ---- reading input whole ------------------------------------------------ */

int cli_read_all(FILE *f, char **buf, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *b = malloc(cap);
	if (!b)
		return -ENOMEM;
	for (;;) {
		if (n + 1 >= cap) {
			char *nb = realloc(b, cap * 2);
			if (!nb) {
				free(b);
				return -ENOMEM;
			}
			b = nb;
			cap *= 2;
		}
		size_t got = fread(b + n, 1, cap - n - 1, f);
		n += got;
		if (got == 0) {
			if (ferror(f)) {
				int e = errno ? errno : EIO;
				free(b);
				return -e;
			}
			break;
		}
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
}

int cli_read_file(const char *path, char **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	int rc = cli_read_all(f, buf, len);
	fclose(f);
	return rc;
}

/* ---- base64 and text ---------------------------------------------------- */

static const char b64_chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *b64_encode(const uint8_t *p, size_t n)
{
	char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		*o++ = b64_chars[(v >> 18) & 63];
		*o++ = b64_chars[(v >> 12) & 63];
		*o++ = i + 1 < n ? b64_chars[(v >> 6) & 63] : '=';
		*o++ = i + 2 < n ? b64_chars[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

static int b64_val(char c)
{
	const char *p = c ? strchr(b64_chars, c) : NULL;
	return p ? (int)(p - b64_chars) : -1;
}

long b64_decode(const char *s, size_t n, uint8_t *out)
{
	while (n > 0 && s[n - 1] == '=')
		n--;
	if (n % 4 == 1)
		return -1;
	long o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64_val(s[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	return o;
}

bool text_ok(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		uint8_t c = p[i];
		size_t k;
		uint32_t cp;
		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			k = 1, cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2, cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			k = 3, cp = c & 0x07;
		} else {
			return false;
		}
		if (i + k >= n)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + j] & 0x3f);
		}
		/* overlong forms, surrogates, beyond U+10FFFF */
		if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		i += k + 1;
	}
	return true;
}

/* ---- writer ------------------------------------------------------------- */

#define JW_DEPTH 32
static bool jw_first[JW_DEPTH]; /* no member written yet at this level */
static int jw_level;
static bool jw_after_key;       /* a value follows its key: no comma */

static void jw_sep(void)
{
	if (jw_after_key) {
		jw_after_key = false;
		return;
	}
	if (jw_level > 0) {
		if (!jw_first[jw_level - 1])
			putchar(',');
		jw_first[jw_level - 1] = false;
	}
}

static void jw_open(char c)
{
	jw_sep();
	putchar(c);
	assert(jw_level < JW_DEPTH);
	jw_first[jw_level++] = true;
}

void jw_obj(void) { jw_open('{'); }
void jw_arr(void) { jw_open('['); }
void jw_end_obj(void) { jw_level--; putchar('}'); }
void jw_end_arr(void) { jw_level--; putchar(']'); }

static void jw_raw_str(const char *s, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '"': fputs("\\\"", stdout); break;
		case '\\': fputs("\\\\", stdout); break;
		case '\n': fputs("\\n", stdout); break;
		case '\r': fputs("\\r", stdout); break;
		case '\t': fputs("\\t", stdout); break;
		default:
			if (c < 0x20 || c == 0x7f)
				printf("\\u%04x", c);
			else
				putchar(c);
		}
	}
	putchar('"');
}

void jw_key(const char *k)
{
	jw_sep();
	jw_raw_str(k, strlen(k));
	putchar(':');
	jw_after_key = true;
}

void jw_strn(const char *s, size_t n) { jw_sep(); jw_raw_str(s, n); }
void jw_str(const char *s) { if (s) jw_strn(s, strlen(s)); else jw_null(); }
void jw_int(int64_t v) { jw_sep(); printf("%" PRId64, v); }
void jw_bool(bool v) { jw_sep(); fputs(v ? "true" : "false", stdout); }
void jw_null(void) { jw_sep(); fputs("null", stdout); }

void jw_newline(void)
{
	putchar('\n');
	fflush(stdout);
}

void jw_data(const uint8_t *p, int32_t n)
{
	if (p == NULL || n < 0) {
		jw_key("data");
		jw_null();
		return;
	}
	if (text_ok(p, (size_t)n)) {
		jw_key("data");
		jw_strn((const char *)p, (size_t)n);
		jw_key("encoding");
		jw_str("utf-8");
	} else {
		char *b = b64_encode(p, (size_t)n);
		jw_key("data");
		jw_str(b ? b : "");
		jw_key("encoding");
		jw_str("base64");
		free(b);
	}
}

void jw_stat(const struct zk_stat *st)
{
	jw_obj();
	jw_key("czxid"); jw_int(st->czxid);
	jw_key("mzxid"); jw_int(st->mzxid);
	jw_key("pzxid"); jw_int(st->pzxid);
	jw_key("ctime"); jw_int(st->ctime);
	jw_key("mtime"); jw_int(st->mtime);
	jw_key("version"); jw_int(st->version);
	jw_key("cversion"); jw_int(st->cversion);
	jw_key("aversion"); jw_int(st->aversion);
	jw_key("ephemeralOwner"); jw_int(st->ephemeral_owner);
	jw_key("dataLength"); jw_int(st->data_length);
	jw_key("numChildren"); jw_int(st->num_children);
	jw_end_obj();
}

/* ---- reader ------------------------------------------------------------- */

#define JV_DEPTH 64

struct jp {
	const char *s;
	size_t n, i;
	bool err;
};

static void jp_ws(struct jp *p)
{
	while (p->i < p->n && strchr(" \t\r\n", p->s[p->i]) && p->s[p->i])
		p->i++;
}

static bool jp_lit(struct jp *p, const char *lit)
{
	size_t k = strlen(lit);
	if (p->n - p->i < k || memcmp(p->s + p->i, lit, k) != 0)
		return false;
	p->i += k;
	return true;
}

static int jp_hex4(struct jp *p, uint32_t *out)
{
	if (p->n - p->i < 4)
		return -1;
	uint32_t v = 0;
	for (int k = 0; k < 4; k++) {
		char c = p->s[p->i++];
		v <<= 4;
		if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
		else return -1;
	}
	*out = v;
	return 0;
}

static size_t put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) { o[0] = (char)cp; return 1; }
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 63));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 63));
		o[2] = (char)(0x80 | (cp & 63));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 63));
	o[2] = (char)(0x80 | ((cp >> 6) & 63)); o[3] = (char)(0x80 | (cp & 63));
	return 4;
}

/* A string at p->i (the opening quote); malloc'd, NUL-terminated. */
static char *jp_string(struct jp *p, size_t *len)
{
	if (p->i >= p->n || p->s[p->i] != '"')
		return NULL;
	p->i++;
	/* The decoded form is never longer than the escaped one. */
	size_t start = p->i;
	char *out = malloc(p->n - start + 1);
	size_t o = 0;
	if (!out)
		return NULL;
	while (p->i < p->n) {
		unsigned char c = (unsigned char)p->s[p->i++];
		if (c == '"') {
			out[o] = '\0';
			*len = o;
			return out;
		}
		if (c < 0x20)
			break;
		if (c != '\\') {
			out[o++] = (char)c;
			continue;
		}
		if (p->i >= p->n)
			break;
		c = (unsigned char)p->s[p->i++];
		uint32_t cp;
		switch (c) {
		case '"': case '\\': case '/': out[o++] = (char)c; break;
		case 'b': out[o++] = '\b'; break;
		case 'f': out[o++] = '\f'; break;
		case 'n': out[o++] = '\n'; break;
		case 'r': out[o++] = '\r'; break;
		case 't': out[o++] = '\t'; break;
		case 'u':
			if (jp_hex4(p, &cp) < 0)
				goto bad;
			if (cp >= 0xd800 && cp < 0xdc00) {
				uint32_t lo;
				if (!jp_lit(p, "\\u") || jp_hex4(p, &lo) < 0 || lo < 0xdc00 ||
				    lo > 0xdfff)
					goto bad;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			} else if (cp >= 0xdc00 && cp <= 0xdfff) {
				goto bad;
			}
			if (cp == 0) /* our strings carry no NUL; data uses base64 */
				goto bad;
			o += put_utf8(out + o, cp);
			break;
		default:
			goto bad;
		}
	}
bad:
	free(out);
	return NULL;
}

static bool jp_value(struct jp *p, struct jv *v, int depth);
static void jv_clear(struct jv *v);

static bool jp_push(struct jv *v, struct jv *item, char *key)
{
	struct jv *ni = realloc(v->items, (v->len + 1) * sizeof(*ni));
	if (!ni)
		return false;
	v->items = ni;
	if (v->type == JV_OBJ) {
		char **nk = realloc(v->keys, (v->len + 1) * sizeof(*nk));
		if (!nk)
			return false;
		v->keys = nk;
		nk[v->len] = key;
	}
	ni[v->len++] = *item;
	return true;
}

static bool jp_container(struct jp *p, struct jv *v, int depth, bool obj)
{
	v->type = obj ? JV_OBJ : JV_ARR;
	p->i++;
	jp_ws(p);
	if (p->i < p->n && p->s[p->i] == (obj ? '}' : ']')) {
		p->i++;
		return true;
	}
	for (;;) {
		char *key = NULL;
		size_t klen;
		jp_ws(p);
		if (obj) {
			key = jp_string(p, &klen);
			if (!key)
				return false;
			jp_ws(p);
			if (p->i >= p->n || p->s[p->i] != ':') {
				free(key);
				return false;
			}
			p->i++;
		}
		struct jv item = { 0 };
		if (!jp_value(p, &item, depth + 1) || !jp_push(v, &item, key)) {
			free(key);
			jv_clear(&item); /* item is on the stack: its members only */
			return false;
		}
		jp_ws(p);
		if (p->i >= p->n)
			return false;
		char c = p->s[p->i++];
		if (c == ',')
			continue;
		return c == (obj ? '}' : ']');
	}
}

static bool jp_value(struct jp *p, struct jv *v, int depth)
{
	if (depth > JV_DEPTH)
		return false;
	jp_ws(p);
	if (p->i >= p->n)
		return false;
	char c = p->s[p->i];
	if (c == '{' || c == '[')
		return jp_container(p, v, depth, c == '{');
	if (c == '"') {
		v->type = JV_STR;
		v->str = jp_string(p, &v->len);
		return v->str != NULL;
	}
	if (jp_lit(p, "true")) { v->type = JV_BOOL; v->b = true; return true; }
	if (jp_lit(p, "false")) { v->type = JV_BOOL; return true; }
	if (jp_lit(p, "null")) { v->type = JV_NULL; return true; }
	if (c == '-' || (c >= '0' && c <= '9')) {
		char tmp[64];
		size_t k = 0;
		while (p->i < p->n && k < sizeof(tmp) - 1 &&
		       strchr("+-0123456789.eE", p->s[p->i]) && p->s[p->i])
			tmp[k++] = p->s[p->i++];
		tmp[k] = '\0';
		char *end;
		v->type = JV_NUM;
		v->num = strtod(tmp, &end);
		return *end == '\0';
	}
	return false;
}

/* Frees what v owns (not v itself). */
static void jv_clear(struct jv *v)
{
	for (size_t i = 0; (v->type == JV_ARR || v->type == JV_OBJ) && i < v->len; i++) {
		jv_clear(&v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->str);
}

struct jv *jv_parse(const char *text, size_t len, size_t *errpos)
{
	struct jp p = { .s = text, .n = len };
	struct jv *v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	bool ok = jp_value(&p, v, 0);
	if (ok) {
		jp_ws(&p);
		ok = p.i == p.n;
	}
	if (!ok) {
		if (errpos)
			*errpos = p.i;
		jv_free(v);
		return NULL;
	}
	return v;
}

void jv_free(struct jv *v)
{
	if (!v)
		return;
	jv_clear(v);
	free(v);
}

const struct jv *jv_get(const struct jv *obj, const char *key)
{
	if (!obj || obj->type != JV_OBJ)
		return NULL;
	for (size_t i = 0; i < obj->len; i++)
		if (strcmp(obj->keys[i], key) == 0)
			return &obj->items[i];
	return NULL;
}
