/* YAML to a plain node tree through libyaml's event API. The event API (rather than libyaml's
 * document loader) lets us refuse aliases before anything is expanded, stop at the depth and
 * node limits while reading, and report duplicate keys at the second key as it arrives. */
#include "model/yaml_doc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "base/error.h"

/* One key of one mapping, for duplicate detection across the whole document in O(1) a key. */
typedef struct key_slot {
	const st_ynode *map;
	const st_ynode *key;
	uint64_t hash;
} key_slot;

typedef struct builder {
	const char *file;
	const char *text;
	size_t len;
	st_ydoc *doc;
	strata_error *err;
	st_ynode *stack[ST_YAML_MAX_DEPTH]; /* open containers */
	size_t cap[ST_YAML_MAX_DEPTH];      /* their item or pair capacity */
	uint32_t depth;
	uint32_t documents;
	key_slot *keys;
	size_t n_keys, cap_keys; /* cap_keys: 0 or a power of two */
} builder;

static st_pos mark_pos(yaml_mark_t m)
{
	st_pos p = {(uint32_t)m.line + 1, (uint32_t)m.column + 1};
	return p;
}

static void free_node(st_ynode *n)
{
	if (!n)
		return;
	switch (n->kind) {
	case ST_YNODE_SCALAR:
		free(n->u.scalar.text);
		break;
	case ST_YNODE_SEQUENCE:
		for (size_t i = 0; i < n->u.seq.n; i++)
			free_node(n->u.seq.items[i]);
		free(n->u.seq.items);
		break;
	case ST_YNODE_MAPPING:
		for (size_t i = 0; i < n->u.map.n; i++) {
			free_node(n->u.map.pairs[i].key);
			free_node(n->u.map.pairs[i].value);
		}
		free(n->u.map.pairs);
		break;
	}
	free(n);
}

void st_ydoc_free(st_ydoc *doc)
{
	if (!doc)
		return;
	free_node(doc->root);
	free(doc);
}

/* Writes at most 48 bytes of the text, quoted, with control bytes shown as '?', so a message
 * stays one readable line whatever the file holds. */
static void quote_text(const char *text, size_t len, char q, char *buf, size_t size)
{
	size_t max = 48, o = 0;
	if (size < 8) {
		if (size)
			buf[0] = '\0';
		return;
	}
	buf[o++] = q;
	for (size_t i = 0; i < len && i < max && o + 5 < size; i++) {
		unsigned char c = (unsigned char)text[i];
		buf[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (len > max && o + 5 < size) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o++] = q;
	buf[o] = '\0';
}

bool st_ynode_is_null(const st_ynode *n)
{
	if (!n || n->kind != ST_YNODE_SCALAR || n->u.scalar.style != ST_YSTYLE_PLAIN)
		return false;
	const char *t = n->u.scalar.text;
	return !strcmp(t, "") || !strcmp(t, "~") || !strcmp(t, "null") || !strcmp(t, "Null") ||
	       !strcmp(t, "NULL");
}

void st_ynode_describe(const st_ynode *n, char *buf, size_t size)
{
	char q[64];
	if (!n) {
		snprintf(buf, size, "nothing");
	} else if (n->kind == ST_YNODE_MAPPING) {
		snprintf(buf, size, "a mapping");
	} else if (n->kind == ST_YNODE_SEQUENCE) {
		snprintf(buf, size, "a sequence");
	} else if (st_ynode_is_null(n)) {
		snprintf(buf, size, "null");
	} else if (n->u.scalar.style == ST_YSTYLE_PLAIN) {
		quote_text(n->u.scalar.text, n->u.scalar.len, '\'', buf, size);
	} else {
		quote_text(n->u.scalar.text, n->u.scalar.len, '"', q, sizeof(q));
		snprintf(buf, size, "the string %s", q);
	}
}

void st_yquote(const st_ynode *n, char *buf, size_t size)
{
	if (n && n->kind == ST_YNODE_SCALAR)
		quote_text(n->u.scalar.text, n->u.scalar.len, '\'', buf, size);
	else
		st_ynode_describe(n, buf, size);
}

const st_ynode *st_ynode_get(const st_ynode *map, const char *key)
{
	if (!map || map->kind != ST_YNODE_MAPPING)
		return NULL;
	size_t klen = strlen(key);
	for (size_t i = 0; i < map->u.map.n; i++) {
		const st_ynode *k = map->u.map.pairs[i].key;
		if (k->u.scalar.len == klen && !memcmp(k->u.scalar.text, key, klen))
			return map->u.map.pairs[i].value;
	}
	return NULL;
}

static strata_status fail_at(builder *b, st_pos pos, strata_status status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static strata_status fail_at(builder *b, st_pos pos, strata_status status, const char *fmt, ...)
{
	char msg[STRATA_ERROR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return st_fail(b->err, status, "%s:%u:%u: %s", b->file, pos.line, pos.col, msg);
}

static strata_status no_memory(builder *b)
{
	return st_fail(b->err, STRATA_ERR_NO_MEMORY, "%s: out of memory while reading YAML", b->file);
}

static uint64_t key_hash(const st_ynode *map, const st_ynode *key)
{
	uint64_t h = 0xcbf29ce484222325ull ^ ((uint64_t)(uintptr_t)map * 0x9E3779B97F4A7C15ull);
	for (size_t i = 0; i < key->u.scalar.len; i++) {
		h ^= (unsigned char)key->u.scalar.text[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static bool same_key(const st_ynode *a, const st_ynode *b)
{
	return a->u.scalar.len == b->u.scalar.len &&
	       !memcmp(a->u.scalar.text, b->u.scalar.text, a->u.scalar.len);
}

static void key_insert_slot(key_slot *slots, size_t cap, key_slot s)
{
	size_t i = (size_t)s.hash & (cap - 1);
	while (slots[i].key)
		i = (i + 1) & (cap - 1);
	slots[i] = s;
}

/* Records `key` for `map`; returns the earlier equal key, or NULL. Sets *oom on allocation failure. */
static const st_ynode *key_seen(builder *b, const st_ynode *map, const st_ynode *key, bool *oom)
{
	if ((b->n_keys + 1) * 2 > b->cap_keys) {
		size_t ncap = b->cap_keys ? b->cap_keys * 2 : 64;
		key_slot *ns = calloc(ncap, sizeof(*ns));
		if (!ns) {
			*oom = true;
			return NULL;
		}
		for (size_t i = 0; i < b->cap_keys; i++)
			if (b->keys[i].key)
				key_insert_slot(ns, ncap, b->keys[i]);
		free(b->keys);
		b->keys = ns;
		b->cap_keys = ncap;
	}
	key_slot s = {map, key, key_hash(map, key)};
	size_t i = (size_t)s.hash & (b->cap_keys - 1);
	for (; b->keys[i].key; i = (i + 1) & (b->cap_keys - 1))
		if (b->keys[i].hash == s.hash && b->keys[i].map == map && same_key(b->keys[i].key, key))
			return b->keys[i].key;
	b->keys[i] = s;
	b->n_keys++;
	return NULL;
}

static strata_status grow(builder *b, void **array, size_t n, size_t *cap, size_t elem)
{
	if (n < *cap)
		return STRATA_OK;
	size_t ncap = *cap ? *cap * 2 : 4;
	void *na = realloc(*array, ncap * elem);
	if (!na)
		return no_memory(b);
	*array = na;
	*cap = ncap;
	return STRATA_OK;
}

/* Hangs a new node under the innermost open container (or makes it the root). The node belongs
 * to the tree from here on, so one free of the root releases everything on any error path. */
static strata_status attach(builder *b, st_ynode *node)
{
	if (b->depth == 0) {
		b->doc->root = node;
		return STRATA_OK;
	}
	st_ynode *parent = b->stack[b->depth - 1];
	size_t *cap = &b->cap[b->depth - 1];
	strata_status st;
	if (parent->kind == ST_YNODE_SEQUENCE) {
		st = grow(b, (void **)&parent->u.seq.items, parent->u.seq.n, cap, sizeof(st_ynode *));
		if (st) {
			free_node(node);
			return st;
		}
		parent->u.seq.items[parent->u.seq.n++] = node;
		return STRATA_OK;
	}
	size_t n = parent->u.map.n;
	if (n > 0 && !parent->u.map.pairs[n - 1].value) {
		parent->u.map.pairs[n - 1].value = node;
		return STRATA_OK;
	}
	if (node->kind != ST_YNODE_SCALAR) {
		st_pos pos = node->pos;
		const char *what = node->kind == ST_YNODE_MAPPING ? "mappings" : "sequences";
		free_node(node);
		return fail_at(b, pos, STRATA_ERR_INVALID, "mapping keys must be scalars, not %s", what);
	}
	st = grow(b, (void **)&parent->u.map.pairs, n, cap, sizeof(st_ypair));
	if (st) {
		free_node(node);
		return st;
	}
	parent->u.map.pairs[n].key = node;
	parent->u.map.pairs[n].value = NULL;
	parent->u.map.n++;
	bool oom = false;
	const st_ynode *first = key_seen(b, parent, node, &oom);
	if (oom)
		return no_memory(b);
	if (first) {
		char q[64];
		st_yquote(node, q, sizeof(q));
		return fail_at(b, node->pos, STRATA_ERR_PARSE, "duplicate key %s (first at %u:%u)", q,
		               first->pos.line, first->pos.col);
	}
	return STRATA_OK;
}

static strata_status new_node(builder *b, st_ynode_kind kind, st_pos pos, st_ynode **out)
{
	if (b->doc->n_nodes >= ST_YAML_MAX_NODES)
		return fail_at(b, pos, STRATA_ERR_INVALID, "more than %d YAML nodes", ST_YAML_MAX_NODES);
	st_ynode *n = calloc(1, sizeof(*n));
	if (!n)
		return no_memory(b);
	n->kind = kind;
	n->pos = pos;
	b->doc->n_nodes++;
	*out = n;
	return STRATA_OK;
}

/* Plain data only: an anchor or tag would give the file a meaning this format does not read. */
static strata_status check_properties(builder *b, st_pos pos, const yaml_char_t *anchor,
                                      const yaml_char_t *tag)
{
	if (anchor)
		return fail_at(b, pos, STRATA_ERR_INVALID,
		               "anchors are not supported (plain data only): &%.48s", (const char *)anchor);
	if (tag)
		return fail_at(b, pos, STRATA_ERR_INVALID, "tags are not supported (plain data only): %.48s",
		               (const char *)tag);
	return STRATA_OK;
}

static st_yscalar_style scalar_style(yaml_scalar_style_t s)
{
	switch (s) {
	case YAML_SINGLE_QUOTED_SCALAR_STYLE:
		return ST_YSTYLE_SINGLE_QUOTED;
	case YAML_DOUBLE_QUOTED_SCALAR_STYLE:
		return ST_YSTYLE_DOUBLE_QUOTED;
	case YAML_LITERAL_SCALAR_STYLE:
		return ST_YSTYLE_LITERAL;
	case YAML_FOLDED_SCALAR_STYLE:
		return ST_YSTYLE_FOLDED;
	default:
		return ST_YSTYLE_PLAIN;
	}
}

static strata_status on_scalar(builder *b, const yaml_event_t *ev)
{
	st_pos pos = mark_pos(ev->start_mark);
	strata_status st = check_properties(b, pos, ev->data.scalar.anchor, ev->data.scalar.tag);
	if (st)
		return st;
	st_ynode *n;
	st = new_node(b, ST_YNODE_SCALAR, pos, &n);
	if (st)
		return st;
	size_t len = ev->data.scalar.length;
	n->u.scalar.text = malloc(len + 1);
	if (!n->u.scalar.text) {
		free(n);
		return no_memory(b);
	}
	memcpy(n->u.scalar.text, ev->data.scalar.value, len);
	n->u.scalar.text[len] = '\0';
	n->u.scalar.len = len;
	n->u.scalar.style = scalar_style(ev->data.scalar.style);
	return attach(b, n);
}

static strata_status on_container_start(builder *b, const yaml_event_t *ev, st_ynode_kind kind)
{
	st_pos pos = mark_pos(ev->start_mark);
	const yaml_char_t *anchor, *tag;
	if (kind == ST_YNODE_MAPPING) {
		anchor = ev->data.mapping_start.anchor;
		tag = ev->data.mapping_start.tag;
	} else {
		anchor = ev->data.sequence_start.anchor;
		tag = ev->data.sequence_start.tag;
	}
	strata_status st = check_properties(b, pos, anchor, tag);
	if (st)
		return st;
	if (b->depth >= ST_YAML_MAX_DEPTH)
		return fail_at(b, pos, STRATA_ERR_INVALID, "nesting deeper than %d levels",
		               ST_YAML_MAX_DEPTH);
	st_ynode *n;
	st = new_node(b, kind, pos, &n);
	if (st)
		return st;
	st = attach(b, n);
	if (st)
		return st;
	b->stack[b->depth] = n;
	b->cap[b->depth] = 0;
	b->depth++;
	return STRATA_OK;
}

/* libyaml reports reader errors (bad UTF-8, control characters) as a byte offset only. libyaml
 * counts columns in characters, so do we: UTF-8 continuation bytes do not advance the column. */
static st_pos offset_pos(const builder *b, size_t offset)
{
	st_pos p = {1, 1};
	for (size_t i = 0; i < offset && i < b->len; i++) {
		unsigned char c = (unsigned char)b->text[i];
		if (c == '\n') {
			p.line++;
			p.col = 1;
		} else if ((c & 0xC0) != 0x80) {
			p.col++;
		}
	}
	return p;
}

static strata_status parser_error(builder *b, const yaml_parser_t *p)
{
	const char *problem = p->problem ? p->problem : "malformed YAML";
	switch (p->error) {
	case YAML_MEMORY_ERROR:
		return no_memory(b);
	case YAML_READER_ERROR:
		if (p->problem_value != -1)
			return fail_at(b, offset_pos(b, p->problem_offset), STRATA_ERR_PARSE, "%s (0x%X)",
			               problem, (unsigned)p->problem_value);
		return fail_at(b, offset_pos(b, p->problem_offset), STRATA_ERR_PARSE, "%s", problem);
	default:
		if (p->context) {
			st_pos c = mark_pos(p->context_mark);
			return fail_at(b, mark_pos(p->problem_mark), STRATA_ERR_PARSE, "%s (%s at %u:%u)",
			               problem, p->context, c.line, c.col);
		}
		return fail_at(b, mark_pos(p->problem_mark), STRATA_ERR_PARSE, "%s", problem);
	}
}

static strata_status on_event(builder *b, const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (++b->documents > 1)
			return fail_at(b, mark_pos(ev->start_mark), STRATA_ERR_INVALID,
			               "a second YAML document; a model file holds exactly one");
		return STRATA_OK;
	case YAML_ALIAS_EVENT:
		return fail_at(b, mark_pos(ev->start_mark), STRATA_ERR_INVALID,
		               "aliases are not supported (plain data only): *%.48s",
		               (const char *)ev->data.alias.anchor);
	case YAML_SCALAR_EVENT:
		return on_scalar(b, ev);
	case YAML_SEQUENCE_START_EVENT:
		return on_container_start(b, ev, ST_YNODE_SEQUENCE);
	case YAML_MAPPING_START_EVENT:
		return on_container_start(b, ev, ST_YNODE_MAPPING);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		if (b->depth > 0)
			b->depth--;
		return STRATA_OK;
	default:
		return STRATA_OK;
	}
}

strata_status st_ydoc_parse(const char *text, size_t len, const char *file, st_ydoc **out, strata_error *err)
{
	builder b = {.file = file ? file : "(string)", .text = text, .len = len, .err = err};
	yaml_parser_t parser;
	strata_status st = STRATA_OK;

	*out = NULL;
	b.doc = calloc(1, sizeof(*b.doc));
	if (!b.doc)
		return no_memory(&b);
	if (!yaml_parser_initialize(&parser)) {
		st = no_memory(&b);
		goto out_free_doc;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	for (;;) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&parser, &ev)) {
			st = parser_error(&b, &parser);
			break;
		}
		st = on_event(&b, &ev);
		bool done = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
		if (st || done)
			break;
	}
	yaml_parser_delete(&parser);
	free(b.keys);
	if (st)
		goto out_free_doc;
	*out = b.doc;
	return STRATA_OK;

out_free_doc:
	st_ydoc_free(b.doc);
	return st;
}
