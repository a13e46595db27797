#include "base/initializers.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[] = {"glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "zeros", "ones",
                                    "orthogonal", "uniform", "random_uniform", "normal", "random_normal"};

/* Whether `name`, `len` characters, is one initializer's name. */
static bool known_one(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == len && strncmp(name, names[i], len) == 0)
			return true;
	return false;
}

/* The blocks of a comma-separated list ("zeros,ones,zeros,zeros"): how many, 1 for a plain name. */
uint64_t st_initializer_blocks(const char *name)
{
	uint64_t n = 1;
	for (const char *c = name; *c; c++)
		n += *c == ',';
	return n;
}

bool st_initializer_known(const char *name)
{
	if (!name)
		return false;
	for (;;) {
		const char *comma = strchr(name, ',');
		size_t len = comma ? (size_t)(comma - name) : strlen(name);
		if (!known_one(name, len))
			return false;
		if (!comma)
			return true;
		name = comma + 1;
	}
}

const char *st_initializer_names(void)
{
	return "glorot_uniform, glorot_normal, he_uniform, he_normal, zeros, ones, orthogonal, uniform (random_uniform), "
	       "normal (random_normal)";
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

void st_rng_seed(st_rng *rng, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ull);
	for (int i = 0; i < 4; i++)
		rng->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t st_rng_next(st_rng *rng)
{
	uint64_t *s = rng->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

double st_rng_uniform(st_rng *rng)
{
	return (double)(st_rng_next(rng) >> 11) * (1.0 / 9007199254740992.0);
}

static double normal(st_rng *rng)
{
	/* Box-Muller; 1 - u keeps log() away from zero. */
	double u1 = 1.0 - st_rng_uniform(rng), u2 = st_rng_uniform(rng);
	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Keras' truncated normal: values beyond two standard deviations are drawn again. */
static double truncated_normal(st_rng *rng, double stddev)
{
	double x;
	do
		x = normal(rng);
	while (fabs(x) > 2.0);
	return x * stddev;
}

/* Keras' _compute_fans: receptive field times input/output channels for kernels of rank > 2. */
static void fans(const strata_shape *shape, double *fan_in, double *fan_out)
{
	uint32_t r = shape->rank;
	if (r == 1) {
		*fan_in = *fan_out = (double)shape->dims[0];
		return;
	}
	double receptive = 1.0;
	for (uint32_t i = 0; i + 2 < r; i++)
		receptive *= (double)shape->dims[i];
	*fan_in = (double)shape->dims[r - 2] * receptive;
	*fan_out = (double)shape->dims[r - 1] * receptive;
}

/* Keras' Orthogonal (gain 1): the weight as a matrix of prod(shape[:-1]) rows and shape[-1]
 * columns, from the Q of the QR decomposition of a normal matrix of max x min of them, with R's
 * diagonal made positive, transposed when there are fewer rows than columns. Modified
 * Gram-Schmidt in double gives Q with that diagonal already positive. */
static strata_status orthogonal(const strata_shape *shape, float *dst, uint64_t count, st_rng *rng)
{
	uint64_t cols = shape->rank ? (uint64_t)shape->dims[shape->rank - 1] : 1, rows = cols ? count / cols : 0;
	uint64_t tall = rows > cols ? rows : cols, wide = rows > cols ? cols : rows; /* q: tall x wide */
	if (shape->rank < 2)
		return STRATA_ERR_UNSUPPORTED;
	if (count == 0)
		return STRATA_OK;
	if (tall > (uint64_t)1 << 26 || wide > (uint64_t)1 << 14)
		return STRATA_ERR_OVERFLOW; /* wide^2 x tall work: no weight of this size is orthogonalized */
	double *q = malloc(tall * wide * sizeof(*q));
	if (!q)
		return STRATA_ERR_NO_MEMORY;
	for (uint64_t i = 0; i < tall * wide; i++)
		q[i] = normal(rng);
	/* Column j of q, q[i * wide + j], made orthogonal to the ones before it and of unit length. */
	for (uint64_t j = 0; j < wide; j++) {
		for (uint64_t k = 0; k < j; k++) {
			double dot = 0;
			for (uint64_t i = 0; i < tall; i++)
				dot += q[i * wide + k] * q[i * wide + j];
			for (uint64_t i = 0; i < tall; i++)
				q[i * wide + j] -= dot * q[i * wide + k];
		}
		double norm = 0;
		for (uint64_t i = 0; i < tall; i++)
			norm += q[i * wide + j] * q[i * wide + j];
		norm = sqrt(norm);
		for (uint64_t i = 0; i < tall; i++)
			q[i * wide + j] = norm > 0 ? q[i * wide + j] / norm : 0.0;
	}
	for (uint64_t r = 0; r < rows; r++)
		for (uint64_t c = 0; c < cols; c++)
			dst[r * cols + c] = (float)(rows >= cols ? q[r * wide + c] : q[c * wide + r]);
	free(q);
	return STRATA_OK;
}

static strata_status initialize_one(const char *name, const strata_shape *shape, float *dst, uint64_t count,
                                    st_rng *rng);

/* A list of n names: the last axis in n equal blocks, block i initialized by name i as a weight of
 * its own (Keras' LSTM bias with unit_forget_bias: the forget gate's block ones, the others by
 * bias_initializer). Each block is filled whole, then scattered to its columns. */
static strata_status initialize_blocks(const char *name, uint64_t n, const strata_shape *shape, float *dst,
                                       uint64_t count, st_rng *rng)
{
	if (shape->rank < 1 || shape->dims[shape->rank - 1] <= 0 || (uint64_t)shape->dims[shape->rank - 1] % n)
		return STRATA_ERR_INVALID;
	uint64_t last = (uint64_t)shape->dims[shape->rank - 1], width = last / n, rows = count / last;
	strata_shape block = *shape;
	block.dims[shape->rank - 1] = (int64_t)width;
	float *tmp = malloc(rows * width * sizeof(float));
	if (!tmp)
		return STRATA_ERR_NO_MEMORY;
	char one[32];
	strata_status st = STRATA_OK;
	for (uint64_t i = 0; i < n && st == STRATA_OK; i++) {
		const char *comma = strchr(name, ',');
		size_t len = comma ? (size_t)(comma - name) : strlen(name);
		if (len >= sizeof(one)) {
			st = STRATA_ERR_INVALID;
			break;
		}
		memcpy(one, name, len);
		one[len] = '\0';
		st = initialize_one(one, &block, tmp, rows * width, rng);
		for (uint64_t r = 0; r < rows && st == STRATA_OK; r++)
			memcpy(dst + r * last + i * width, tmp + r * width, width * sizeof(float));
		name = comma ? comma + 1 : name + len;
	}
	free(tmp);
	return st;
}

strata_status st_initialize(const char *name, const strata_shape *shape, float *dst, uint64_t count, st_rng *rng)
{
	uint64_t n = st_initializer_blocks(name);
	return n > 1 ? initialize_blocks(name, n, shape, dst, count, rng) : initialize_one(name, shape, dst, count, rng);
}

static strata_status initialize_one(const char *name, const strata_shape *shape, float *dst, uint64_t count,
                                    st_rng *rng)
{
	double fan_in, fan_out;
	fans(shape, &fan_in, &fan_out);
	/* Keras divides by this constant: the stddev of a unit normal truncated at two stddevs. */
	const double truncation = 0.87962566103423978;

	if (strcmp(name, "zeros") == 0 || strcmp(name, "ones") == 0) {
		float v = name[0] == 'o' ? 1.0f : 0.0f;
		for (uint64_t i = 0; i < count; i++)
			dst[i] = v;
	} else if (strcmp(name, "glorot_uniform") == 0 || strcmp(name, "he_uniform") == 0) {
		double scale = name[0] == 'g' ? 2.0 / (fan_in + fan_out) : 2.0 / fan_in;
		double limit = sqrt(3.0 * scale);
		for (uint64_t i = 0; i < count; i++)
			dst[i] = (float)((2.0 * st_rng_uniform(rng) - 1.0) * limit);
	} else if (strcmp(name, "glorot_normal") == 0 || strcmp(name, "he_normal") == 0) {
		double scale = name[0] == 'g' ? 2.0 / (fan_in + fan_out) : 2.0 / fan_in;
		double stddev = sqrt(scale) / truncation;
		for (uint64_t i = 0; i < count; i++)
			dst[i] = (float)truncated_normal(rng, stddev);
	} else if (strcmp(name, "uniform") == 0 || strcmp(name, "random_uniform") == 0) {
		/* Keras' RandomUniform defaults (Embedding's initializer): U(-0.05, 0.05). */
		for (uint64_t i = 0; i < count; i++)
			dst[i] = (float)((2.0 * st_rng_uniform(rng) - 1.0) * 0.05);
	} else if (strcmp(name, "normal") == 0 || strcmp(name, "random_normal") == 0) {
		/* Keras' RandomNormal defaults: N(0, 0.05^2). */
		for (uint64_t i = 0; i < count; i++)
			dst[i] = (float)(normal(rng) * 0.05);
	} else if (strcmp(name, "orthogonal") == 0) {
		return orthogonal(shape, dst, count, rng);
	} else {
		return STRATA_ERR_INVALID;
	}
	return STRATA_OK;
}
