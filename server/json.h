/*
 * json: a JSON writer onto a jute_out, for the AdminServer's answers.
 *
 * Calls nest as the document does: json_begin_object(), then json_key()
 * before each member's value, json_end_object(). Commas and string
 * escaping are the writer's business; an error (memory) is latched in the
 * jute_out, as for every other writer of it.
 */
#ifndef QUORUM_JSON_H
#define QUORUM_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jute.h"

#define JSON_MAX_DEPTH 16

struct json {
	struct jute_out *o;
	int depth;
	bool after_key;            /* the next value is a member's */
	bool has_item[JSON_MAX_DEPTH]; /* a comma goes before the next item */
};

void json_init(struct json *j, struct jute_out *o);
void json_begin_object(struct json *j);
void json_end_object(struct json *j);
void json_begin_array(struct json *j);
void json_end_array(struct json *j);
void json_key(struct json *j, const char *key);
void json_str(struct json *j, const char *s);
void json_strn(struct json *j, const char *s, size_t n);
void json_int(struct json *j, int64_t v);
void json_double(struct json *j, double v);
void json_bool(struct json *j, bool v);
void json_null(struct json *j);

#endif
