/* libFuzzer target: inference request bodies through `strata serve`'s parser (src/serve/protocol.c)
 * against a model of two inputs (a 2x2x1 image, 3 int32 ids) and two outputs. The first byte of
 * an input says where the JSON ends (Inference-Header-Content-Length) as a fraction of the rest
 * (255: all of it JSON), so JSON bodies and JSON-then-binary bodies are both explored. A request
 * that parses is answered (sv_response_write) with outputs of its batch, JSON and binary alike;
 * both must succeed, and every allocation is freed (LeakSanitizer). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/protocol.h"
#include "../serve_toy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	static sv_model_info m;
	if (!m.name)
		m = serve_toy_model(1.0f / 255);
	const char *body = (const char *)data + 1;
	size_t len = size - 1, json_len = data[0] == 255 ? len : len * data[0] / 255;
	sv_request r;
	char message[512];
	int status = sv_request_parse(&m, body, len, json_len, &r, message, sizeof(message));
	if (status != 0 && status != 400)
		abort();
	if (status == 400 && !message[0])
		abort(); /* a refusal always says why */
	if (status == 0) {
		/* Batches up to the parser's bound; the outputs' values do not matter. */
		float *outs[2] = {calloc((size_t)r.batch * 4, sizeof(float)), calloc((size_t)r.batch, sizeof(float))};
		char *text;
		size_t n, jn;
		if (outs[0] && outs[1] && sv_response_write(&m, &r, outs, &text, &n, &jn) == 0)
			free(text);
		free(outs[0]);
		free(outs[1]);
	}
	sv_request_free(&r);
	return 0;
}
