/* `strata plot`'s reader of the CSV log that `strata train` writes:
 *
 *   epoch,batch,loss,accuracy,val_loss,val_accuracy,images_per_s,seconds
 *
 * The trainer writes a row at every progress report (about once a second, validation columns
 * empty) and one at each epoch's end (validation figures when there is validation data); a
 * resumed run appends to the same file, so an epoch may appear many times. The last row of an
 * epoch is the one that counts: the epoch-end row supersedes the progress rows before it, and a
 * resumed run's rows supersede those of the run it continues.
 *
 * Strict: the header must start with those eight columns in that order; columns after them
 * (a later version may add some) are allowed and ignored, but every row must have as many fields
 * as the header. Blank lines are skipped. Errors read "FILE:LINE: message". */
#ifndef STRATA_CLI_PLOT_CSV_H
#define STRATA_CLI_PLOT_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <strata/strata.h>

/* The figures of one epoch: its last row in the log. Values may be NaN or infinite (a training
 * that diverged logs "nan"); the plot leaves such points out. */
typedef struct plot_epoch {
	uint32_t epoch;                /* >= 1 */
	uint32_t batch;                /* batches done when the row was written */
	double loss, accuracy;
	bool has_val;                  /* val_loss and val_accuracy were given (both or neither) */
	double val_loss, val_accuracy; /* NaN unless has_val */
	double images_per_s, seconds;
	size_t line;                   /* the 1-based line the row came from */
} plot_epoch;

typedef struct plot_log {
	plot_epoch *epochs; /* ascending epoch numbers, one entry per epoch */
	size_t count;
	size_t rows;        /* data rows read, superseded ones included */
	bool has_val;       /* some epoch has validation figures */
} plot_log;

/* A training log writes about 60 bytes a row, a row a second: 64 MiB hold a million rows, twelve
 * days of training. A larger file is not a training log and is refused unread. */
#define PLOT_LOG_MAX_BYTES (UINT64_C(64) << 20)

/* Reads the log at `path`. Missing file: STRATA_ERR_NOT_FOUND; unreadable: STRATA_ERR_IO; not a
 * regular file (a folder, a FIFO, a device: refused without blocking) or larger than
 * PLOT_LOG_MAX_BYTES: STRATA_ERR_INVALID; bad content (header, field count, a value that is not
 * a number, no rows): STRATA_ERR_PARSE. */
strata_status plot_log_read(const char *path, plot_log *out, strata_error *err);
/* As plot_log_read from an open stream; `name` stands for the file in messages. */
strata_status plot_log_parse(FILE *in, const char *name, plot_log *out, strata_error *err);
void plot_log_free(plot_log *log);

/* Fills `err` (when not NULL) with the message and returns `status`. */
strata_status plot_fail(strata_error *err, strata_status status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
