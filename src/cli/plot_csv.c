/* The training log reader of `strata plot` (see plot_csv.h for the format and its rules). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/fsutil.h"
#include "plot_csv.h"

enum { COL_EPOCH, COL_BATCH, COL_LOSS, COL_ACCURACY, COL_VAL_LOSS, COL_VAL_ACCURACY, COL_IMAGES_PER_S,
       COL_SECONDS, COL_COUNT };

static const char *const column_names[COL_COUNT] = {
	"epoch", "batch", "loss", "accuracy", "val_loss", "val_accuracy", "images_per_s", "seconds",
};

#define HEADER "epoch,batch,loss,accuracy,val_loss,val_accuracy,images_per_s,seconds"

strata_status plot_fail(strata_error *err, strata_status status, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
		err->status = status;
	}
	return status;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

/* Splits `line` in place at commas into at most `max` trimmed fields; returns how many there
 * are (possibly more than `max`, of which only the first `max` are stored). */
static size_t split(char *line, char **fields, size_t max)
{
	size_t n = 0;
	for (char *p = line;; p++) {
		char *comma = strchr(p, ',');
		if (comma)
			*comma = '\0';
		if (n < max)
			fields[n] = trim(p);
		n++;
		if (!comma)
			return n;
		p = comma;
	}
}

static bool parse_whole(const char *s, uint32_t min, uint32_t *out)
{
	if (*s < '0' || *s > '9')
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* Any number strtod reads in full, "nan" and "inf" included: a diverged training logs them. */
static bool parse_number(const char *s, double *out)
{
	if (!*s)
		return false;
	char *end;
	*out = strtod(s, &end);
	return *end == '\0';
}

static strata_status parse_row(char **f, const char *name, size_t line, plot_epoch *e, strata_error *err)
{
	*e = (plot_epoch){.line = line, .val_loss = NAN, .val_accuracy = NAN};
	if (!parse_whole(f[COL_EPOCH], 1, &e->epoch))
		return plot_fail(err, STRATA_ERR_PARSE, "%s:%zu: epoch '%.64s' is not a whole number from 1 to %u",
		                 name, line, f[COL_EPOCH], UINT32_MAX);
	if (!parse_whole(f[COL_BATCH], 0, &e->batch))
		return plot_fail(err, STRATA_ERR_PARSE, "%s:%zu: batch '%.64s' is not a whole number from 0 to %u",
		                 name, line, f[COL_BATCH], UINT32_MAX);
	bool val_empty = !*f[COL_VAL_LOSS] && !*f[COL_VAL_ACCURACY];
	if (!val_empty && (!*f[COL_VAL_LOSS] || !*f[COL_VAL_ACCURACY]))
		return plot_fail(err, STRATA_ERR_PARSE, "%s:%zu: %s is empty but %s is not: give both or neither",
		                 name, line, *f[COL_VAL_LOSS] ? "val_accuracy" : "val_loss",
		                 *f[COL_VAL_LOSS] ? "val_loss" : "val_accuracy");
	e->has_val = !val_empty;
	struct {
		int col;
		double *dst;
	} numbers[] = {
		{COL_LOSS, &e->loss},
		{COL_ACCURACY, &e->accuracy},
		{COL_VAL_LOSS, &e->val_loss},
		{COL_VAL_ACCURACY, &e->val_accuracy},
		{COL_IMAGES_PER_S, &e->images_per_s},
		{COL_SECONDS, &e->seconds},
	};
	for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
		int c = numbers[i].col;
		if (val_empty && (c == COL_VAL_LOSS || c == COL_VAL_ACCURACY))
			continue;
		if (!parse_number(f[c], numbers[i].dst))
			return plot_fail(err, STRATA_ERR_PARSE, "%s:%zu: %s '%.64s' is not a number", name, line,
			                 column_names[c], f[c]);
	}
	return STRATA_OK;
}

static strata_status check_header(char *line, const char *name, size_t *n_columns, strata_error *err)
{
	/* A spreadsheet that saved the log may have put a UTF-8 byte order mark first. */
	if (strncmp(line, "\xEF\xBB\xBF", 3) == 0)
		memmove(line, line + 3, strlen(line + 3) + 1);
	char *copy = strdup(line);
	if (!copy)
		return plot_fail(err, STRATA_ERR_NO_MEMORY, "%s: out of memory", name);
	for (char *c = copy; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?'; /* a binary file given by mistake stays readable in the message */
	char *f[COL_COUNT];
	size_t n = split(line, f, COL_COUNT);
	bool ok = n >= COL_COUNT;
	for (size_t i = 0; ok && i < COL_COUNT; i++)
		ok = strcmp(f[i], column_names[i]) == 0;
	strata_status st = STRATA_OK;
	if (!ok)
		st = plot_fail(err, STRATA_ERR_PARSE,
		               "%s:1: not a strata training log: the header must start with '" HEADER
		               "', found '%.200s'", name, copy);
	free(copy);
	*n_columns = n;
	return st;
}

static int by_epoch_then_line(const void *a, const void *b)
{
	const plot_epoch *x = a, *y = b;
	if (x->epoch != y->epoch)
		return x->epoch < y->epoch ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* Sorts by epoch, keeping within each epoch the order of the file, then keeps the last row of
 * each epoch. */
static void keep_last_per_epoch(plot_log *log)
{
	qsort(log->epochs, log->count, sizeof(*log->epochs), by_epoch_then_line);
	size_t kept = 0;
	for (size_t i = 0; i < log->count; i++) {
		if (i + 1 < log->count && log->epochs[i + 1].epoch == log->epochs[i].epoch)
			continue;
		log->epochs[kept++] = log->epochs[i];
	}
	log->count = kept;
	log->has_val = false;
	for (size_t i = 0; i < kept; i++)
		log->has_val |= log->epochs[i].has_val;
}

strata_status plot_log_parse(FILE *in, const char *name, plot_log *out, strata_error *err)
{
	*out = (plot_log){0};
	char *line = NULL;
	size_t line_cap = 0, capacity = 0, n_columns = 0, lineno = 0;
	char **fields = NULL;
	strata_status st = STRATA_OK;
	ssize_t len;

	while ((len = getline(&line, &line_cap, in)) >= 0) {
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (lineno == 1) {
			if ((st = check_header(line, name, &n_columns, err)))
				goto out_free;
			fields = malloc(n_columns * sizeof(*fields));
			if (!fields) {
				st = plot_fail(err, STRATA_ERR_NO_MEMORY, "%s: out of memory", name);
				goto out_free;
			}
			continue;
		}
		if (strspn(line, " \t") == (size_t)len)
			continue;
		size_t n = split(line, fields, n_columns);
		if (n != n_columns) {
			st = plot_fail(err, STRATA_ERR_PARSE, "%s:%zu: %zu fields, but the header has %zu", name, lineno,
			               n, n_columns);
			goto out_free;
		}
		if (out->count == capacity) {
			size_t grown = capacity ? 2 * capacity : 64;
			plot_epoch *p = realloc(out->epochs, grown * sizeof(*p));
			if (!p) {
				st = plot_fail(err, STRATA_ERR_NO_MEMORY, "%s: out of memory", name);
				goto out_free;
			}
			out->epochs = p;
			capacity = grown;
		}
		if ((st = parse_row(fields, name, lineno, &out->epochs[out->count], err)))
			goto out_free;
		out->count++;
	}
	if (ferror(in)) {
		st = plot_fail(err, STRATA_ERR_IO, "%s: read error after line %zu: %s", name, lineno,
		               strerror(errno));
		goto out_free;
	}
	if (lineno == 0) {
		st = plot_fail(err, STRATA_ERR_PARSE, "%s:1: empty file; a training log starts with '" HEADER "'",
		               name);
		goto out_free;
	}
	if (out->count == 0) {
		st = plot_fail(err, STRATA_ERR_PARSE, "%s:%zu: no rows after the header: no epoch to plot", name,
		               lineno + 1);
		goto out_free;
	}
	out->rows = out->count;
	keep_last_per_epoch(out);

out_free:
	free(fields);
	free(line);
	if (st)
		plot_log_free(out);
	return st;
}

strata_status plot_log_read(const char *path, plot_log *out, strata_error *err)
{
	*out = (plot_log){0};
	FILE *f;
	uint64_t size;
	/* Only a regular file, opened without blocking: a FIFO would hang the open. */
	strata_status st = st_fopen_regular(path, &f, &size, err);
	if (st)
		return st;
	/* A huge (sparse) file is refused before a line of it is read: a file without newlines
	 * would be one line, read whole. */
	if (size > PLOT_LOG_MAX_BYTES) {
		fclose(f);
		return plot_fail(err, STRATA_ERR_INVALID,
		                 "%s: %llu bytes, more than the %llu bytes a training log may have", path,
		                 (unsigned long long)size, (unsigned long long)PLOT_LOG_MAX_BYTES);
	}
	st = plot_log_parse(f, path, out, err);
	fclose(f);
	return st;
}

void plot_log_free(plot_log *log)
{
	free(log->epochs);
	*log = (plot_log){0};
}
