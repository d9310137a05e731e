/*
 * json: see json.h.
 */
#include "json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

void json_init(struct json *j, struct jute_out *o)
{
	memset(j, 0, sizeof(*j));
	j->o = o;
}

static void raw(struct json *j, const char *s, size_t n)
{
	jute_put_raw(j->o, s, n);
}

/* What goes before any value: a comma between array items. */
static void before_value(struct json *j)
{
	if (j->after_key) {
		j->after_key = false;
		return;
	}
	if (j->has_item[j->depth])
		raw(j, ",", 1);
	j->has_item[j->depth] = true;
}

static void begin(struct json *j, char c)
{
	before_value(j);
	raw(j, &c, 1);
	if (j->depth + 1 < JSON_MAX_DEPTH)
		j->depth++;
	j->has_item[j->depth] = false;
}

static void end(struct json *j, char c)
{
	if (j->depth > 0)
		j->depth--;
	raw(j, &c, 1);
}

void json_begin_object(struct json *j) { begin(j, '{'); }
void json_end_object(struct json *j) { end(j, '}'); }
void json_begin_array(struct json *j) { begin(j, '['); }
void json_end_array(struct json *j) { end(j, ']'); }

static void put_string(struct json *j, const char *s, size_t n)
{
	raw(j, "\"", 1);
	size_t run = 0; /* bytes of s[i - run, i) that need no escape */
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\') {
			run++;
			continue;
		}
		raw(j, s + i - run, run);
		run = 0;
		char esc[8];
		switch (c) {
		case '"': raw(j, "\\\"", 2); break;
		case '\\': raw(j, "\\\\", 2); break;
		case '\n': raw(j, "\\n", 2); break;
		case '\t': raw(j, "\\t", 2); break;
		case '\r': raw(j, "\\r", 2); break;
		default:
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			raw(j, esc, 6);
		}
	}
	raw(j, s + n - run, run);
	raw(j, "\"", 1);
}

void json_key(struct json *j, const char *key)
{
	if (j->has_item[j->depth])
		raw(j, ",", 1);
	j->has_item[j->depth] = true;
	put_string(j, key, strlen(key));
	raw(j, ":", 1);
	j->after_key = true;
}

void json_strn(struct json *j, const char *s, size_t n)
{
	before_value(j);
	put_string(j, s, n);
}

void json_str(struct json *j, const char *s)
{
	json_strn(j, s, strlen(s));
}

void json_int(struct json *j, int64_t v)
{
	char b[32];
	int n = snprintf(b, sizeof(b), "%" PRId64, v);
	before_value(j);
	raw(j, b, (size_t)n);
}

void json_double(struct json *j, double v)
{
	char b[64];
	int n = isfinite(v) ? snprintf(b, sizeof(b), "%.4f", v) : snprintf(b, sizeof(b), "null");
	before_value(j);
	raw(j, b, (size_t)n);
}

void json_bool(struct json *j, bool v)
{
	before_value(j);
	raw(j, v ? "true" : "false", v ? 4 : 5);
}

void json_null(struct json *j)
{
	before_value(j);
	raw(j, "null", 4);
}
