/* ONNX import, the walk's entry points (import.c) for the writer (import_write.c). */
#ifndef ST_ONNX_ONNX_IMPORT_H
#define ST_ONNX_ONNX_IMPORT_H

#include "onnx/import.h"

/* Reads the file and maps its graph. On STRATA_ERR_UNSUPPORTED *out still holds the walk (its
 * `refused` lists every node refused); on other errors *out is NULL. */
strata_status st_onnx_import_graph(const char *onnx_path, st_onnx_import **out, strata_error *err);
void st_onnx_import_free(st_onnx_import *imp);

#endif
