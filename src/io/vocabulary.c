/* Vocabularies of text models (issue 15): the file scripts/text_to_ids.py writes, one token per
 * line, line k the token of id k (line 0 empty: padding; line 1 [UNK]: tokens out of the
 * vocabulary), and the tokenizer both share: ASCII letters lowercased, ASCII punctuation removed,
 * split on whitespace, as Keras' TextVectorization does with its defaults (on ASCII). The tokens
 * are looked up in an open-addressing hash table of the lines. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/strata.h>

#include "base/error.h"
#include "base/fsutil.h"

#define VOCAB_MAX_BYTES (256u << 20)

struct strata_vocabulary {
	char *text;        /* the file, its newlines made NULs */
	const char **tokens; /* by id */
	uint32_t *lengths;
	uint32_t count;
	uint32_t *slots;   /* hash table of ids + 1 (0: empty), a power of two */
	uint32_t n_slots;
};

static uint32_t hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

static bool punctuation(unsigned char c)
{
	return c < 128 && strchr("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", c) && c != '\0';
}

static bool space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

strata_status strata_vocabulary_load(const char *path, strata_vocabulary **out, strata_error *err)
{
	*out = NULL;
	FILE *f = NULL;
	uint64_t size = 0;
	strata_status st = st_fopen_regular(path, &f, &size, err);
	if (st)
		return st;
	if (size > VOCAB_MAX_BYTES) {
		fclose(f);
		return st_fail(err, STRATA_ERR_INVALID, "%s: a vocabulary of %llu bytes is too large", path,
		               (unsigned long long)size);
	}
	strata_vocabulary *v = calloc(1, sizeof(*v));
	if (!v || !(v->text = malloc(size + 1))) {
		fclose(f);
		free(v);
		return st_fail(err, STRATA_ERR_NO_MEMORY, "%s: out of memory", path);
	}
	size_t got = fread(v->text, 1, size, f);
	fclose(f);
	if (got != size) {
		strata_vocabulary_free(v);
		return st_fail(err, STRATA_ERR_IO, "%s: could not read the vocabulary", path);
	}
	v->text[size] = '\0';
	uint64_t lines = 0;
	for (uint64_t i = 0; i < size; i++)
		lines += v->text[i] == '\n';
	if (size && v->text[size - 1] != '\n')
		lines++;
	if (lines < 2 || v->text[0] != '\n' || strncmp(v->text + 1, "[UNK]\n", 6) != 0) {
		strata_vocabulary_free(v);
		return st_fail(err, STRATA_ERR_INVALID, "%s:1: not a vocabulary: its first line must be empty (id 0, "
		               "padding) and its second [UNK] (id 1), as scripts/text_to_ids.py writes it", path);
	}
	v->count = (uint32_t)lines;
	v->n_slots = 1;
	while (v->n_slots < 2 * v->count)
		v->n_slots <<= 1;
	v->tokens = calloc(v->count, sizeof(*v->tokens));
	v->lengths = calloc(v->count, sizeof(*v->lengths));
	v->slots = calloc(v->n_slots, sizeof(*v->slots));
	if (!v->tokens || !v->lengths || !v->slots) {
		strata_vocabulary_free(v);
		return st_fail(err, STRATA_ERR_NO_MEMORY, "%s: out of memory", path);
	}
	char *p = v->text;
	for (uint32_t id = 0; id < v->count; id++) {
		char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		if (nl)
			*nl = '\0';
		v->tokens[id] = p;
		v->lengths[id] = (uint32_t)n;
		p += n + (nl != NULL);
		if (id < 2)
			continue;
		bool bad = n == 0;
		for (size_t k = 0; k < n && !bad; k++)
			bad = space((unsigned char)v->tokens[id][k]) || punctuation((unsigned char)v->tokens[id][k]) ||
			      (v->tokens[id][k] >= 'A' && v->tokens[id][k] <= 'Z');
		if (bad) {
			strata_vocabulary_free(v);
			return st_fail(err, STRATA_ERR_INVALID, "%s:%u: not a token of the tokenizer (empty, or with "
			               "whitespace, punctuation or capitals)", path, id + 1);
		}
		uint32_t s = hash(v->tokens[id], n) & (v->n_slots - 1);
		while (v->slots[s]) {
			uint32_t o = v->slots[s] - 1;
			if (v->lengths[o] == n && memcmp(v->tokens[o], v->tokens[id], n) == 0) {
				strata_vocabulary_free(v);
				return st_fail(err, STRATA_ERR_INVALID, "%s:%u: token '%s' repeats line %u", path, id + 1,
				               v->tokens[id], o + 1);
			}
			s = (s + 1) & (v->n_slots - 1);
		}
		v->slots[s] = id + 1;
	}
	*out = v;
	return STRATA_OK;
}

void strata_vocabulary_free(strata_vocabulary *v)
{
	if (!v)
		return;
	free(v->text);
	free(v->tokens);
	free(v->lengths);
	free(v->slots);
	free(v);
}

uint32_t strata_vocabulary_size(const strata_vocabulary *v)
{
	return v ? v->count : 0;
}

static int32_t lookup(const strata_vocabulary *v, const char *s, size_t n)
{
	uint32_t slot = hash(s, n) & (v->n_slots - 1);
	while (v->slots[slot]) {
		uint32_t id = v->slots[slot] - 1;
		if (v->lengths[id] == n && memcmp(v->tokens[id], s, n) == 0)
			return (int32_t)id;
		slot = (slot + 1) & (v->n_slots - 1);
	}
	return 1; /* [UNK] */
}

size_t strata_vocabulary_encode(const strata_vocabulary *v, const char *text, size_t len, int32_t *ids, size_t length)
{
	/* The current token, lowercased and without punctuation: at most the text's length. */
	char *token = malloc(len + 1);
	if (!token)
		return SIZE_MAX;
	size_t n = 0, tokens = 0;
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)text[i] : ' ';
		if (space(c)) {
			if (n) {
				if (tokens < length)
					ids[tokens] = lookup(v, token, n);
				tokens++;
			}
			n = 0;
			continue;
		}
		if (punctuation(c))
			continue;
		token[n++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	free(token);
	for (size_t k = tokens; k < length; k++)
		ids[k] = 0;
	return tokens;
}
