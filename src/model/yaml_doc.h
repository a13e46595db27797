/* A YAML document as a small tree of plain data: scalars, sequences and mappings, each with the
 * 1-based position of its start. Built from libyaml's event API; anchors, aliases, tags, several
 * documents and non-scalar keys are refused, so what the loader reads is exactly what the file
 * says and no input can expand beyond its own size. */
#ifndef ST_YAML_DOC_H
#define ST_YAML_DOC_H

#include <stdbool.h>
#include <stddef.h>

#include <strata/strata.h>

#include "model/model.h"

#define ST_YAML_MAX_DEPTH 64
#define ST_YAML_MAX_NODES 100000

typedef enum st_ynode_kind {
	ST_YNODE_SCALAR = 0,
	ST_YNODE_SEQUENCE = 1,
	ST_YNODE_MAPPING = 2
} st_ynode_kind;

typedef enum st_yscalar_style {
	ST_YSTYLE_PLAIN = 0,
	ST_YSTYLE_SINGLE_QUOTED = 1,
	ST_YSTYLE_DOUBLE_QUOTED = 2,
	ST_YSTYLE_LITERAL = 3,
	ST_YSTYLE_FOLDED = 4
} st_yscalar_style;

typedef struct st_ynode st_ynode;

typedef struct st_ypair {
	st_ynode *key; /* always a scalar */
	st_ynode *value;
} st_ypair;

struct st_ynode {
	st_ynode_kind kind;
	st_pos pos;
	union {
		struct {
			char *text; /* NUL-terminated; `len` counts bytes, a "\0" escape may sit inside */
			size_t len;
			st_yscalar_style style;
		} scalar;
		struct {
			st_ynode **items;
			size_t n;
		} seq;
		struct {
			st_ypair *pairs; /* in file order */
			size_t n;
		} map;
	} u;
};

typedef struct st_ydoc {
	st_ynode *root; /* NULL when the stream holds no document (empty, or comments only) */
	size_t n_nodes;
} st_ydoc;

/* Parses `len` bytes of `text`. `file` names the input in messages ("FILE:LINE:COL: ..."):
 * STRATA_ERR_PARSE for malformed YAML and duplicate keys, STRATA_ERR_INVALID for YAML this
 * format refuses (anchors, aliases, tags, several documents, complex keys, size limits). */
strata_status st_ydoc_parse(const char *text, size_t len, const char *file, st_ydoc **out, strata_error *err);
void st_ydoc_free(st_ydoc *doc);

/* The value of `key` in a mapping, or NULL. */
const st_ynode *st_ynode_get(const st_ynode *map, const char *key);
/* A plain scalar spelling null: "", "~", "null", "Null", "NULL". */
bool st_ynode_is_null(const st_ynode *node);
/* "a mapping", "a sequence", "null", "the quoted string \"x\"" or "'x'", for "got ..." messages. */
void st_ynode_describe(const st_ynode *node, char *buf, size_t size);
/* A scalar's text in single quotes, shortened and with control bytes masked, for messages. */
void st_yquote(const st_ynode *node, char *buf, size_t size);

#endif
