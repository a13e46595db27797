/* The model the serve protocol's test and fuzz target parse requests for: two inputs, an image
 * (2, 2, 1) and 3 int32 ids, and two outputs, "probs" (4) and "code" (1); UINT8 pixels times
 * `uint8_scale`. */
#ifndef TESTS_SERVE_TOY_H
#define TESTS_SERVE_TOY_H

#include <stdio.h>

#include "serve/protocol.h"

static inline sv_model_info serve_toy_model(float uint8_scale)
{
	sv_model_info m = {.name = "toy", .version = "1", .n_inputs = 2, .n_outputs = 2, .uint8_scale = uint8_scale};
	snprintf(m.inputs[0].name, sizeof(m.inputs[0].name), "image");
	m.inputs[0].rank = 3;
	m.inputs[0].dims[0] = 2;
	m.inputs[0].dims[1] = 2;
	m.inputs[0].dims[2] = 1;
	snprintf(m.inputs[1].name, sizeof(m.inputs[1].name), "ids");
	m.inputs[1].rank = 1;
	m.inputs[1].dims[0] = 3;
	m.inputs[1].ids = true;
	snprintf(m.outputs[0].name, sizeof(m.outputs[0].name), "probs");
	m.outputs[0].rank = 1;
	m.outputs[0].dims[0] = 4;
	snprintf(m.outputs[1].name, sizeof(m.outputs[1].name), "code");
	m.outputs[1].rank = 1;
	m.outputs[1].dims[0] = 1;
	return m;
}

#endif
