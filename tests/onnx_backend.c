/* The ONNX backend tests on Strata: each test case (a folder with model.onnx and
 * test_data_set_N/{input,output}_K.pb, the form of ONNX's own backend tests, which Debian's
 * libonnx-testdata ships) is imported with strata_onnx_import, run on its stored inputs with
 * strata_session_run and compared with its stored outputs within ONNX's tolerances
 * (|got - want| <= atol + rtol * |want|; rtol 1e-3, atol 1e-7 unless --rtol/--atol say).
 *
 *   onnx_backend [--rtol R] [--atol A] [--table] [--list FILE] [--expect FILE] [--quiet] [--report] PATH...
 *
 * A PATH holding model.onnx is a case; any other folder is a suite of cases (its sub-folders).
 * Each case ends PASS, FAIL (imported but wrong, or an import error that is not a refusal) or
 * REFUSED (operators or types Strata does not map: the import's refusal). Strata's layers hold
 * their weights as constants, and many node tests feed them as graph inputs (a Conv's W, an
 * LSTM's W, R and B): a case the import refuses is imported again per data set with its inputs
 * after the first made initializers of that data set's values ("frozen" in the report). --list keeps only the
 * cases named in FILE (one folder name a line, '#' comments); --expect FILE makes a refusal of a
 * case named there a failure (the cases known to pass stay passing). --table prints a Markdown row per
 * suite; --report gives each passing case's largest absolute error. Exit status 1 when any case
 * fails, 0 otherwise. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <strata/strata.h>

#include "base/fsutil.h"
#include "onnx/onnx_file.h"

typedef struct options {
	double rtol, atol;
	bool table, quiet, report;
	char **only;
	size_t n_only;
	char **expect; /* --expect: cases that must pass (a refusal of one fails) */
	size_t n_expect;
} options;

typedef struct counts {
	size_t pass, fail, refused;
} counts;

static bool is_dir(const char *p)
{
	struct stat s;
	return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}

static bool is_file(const char *p)
{
	struct stat s;
	return stat(p, &s) == 0 && S_ISREG(s.st_mode);
}

static char *join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *p = malloc(n);
	if (!p) {
		perror("onnx_backend");
		exit(1);
	}
	snprintf(p, n, "%s/%s", a, b);
	return p;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted entries of a folder that start with `prefix` (NULL: every visible one). */
static char **entries(const char *dir, const char *prefix, size_t *n)
{
	*n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return NULL;
	char **list = NULL;
	size_t cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || (prefix && strncmp(e->d_name, prefix, strlen(prefix))))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			list = realloc(list, cap * sizeof(*list));
		}
		list[(*n)++] = strdup(e->d_name);
	}
	closedir(d);
	if (*n)
		qsort(list, *n, sizeof(*list), by_name);
	return list;
}

static void free_list(char **l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(l[i]);
	free(l);
}

static void remove_tree(const char *dir)
{
	size_t n;
	char **l = entries(dir, NULL, &n);
	for (size_t i = 0; i < n; i++) {
		char *p = join(dir, l[i]);
		unlink(p);
		free(p);
	}
	free_list(l, n);
	rmdir(dir);
}

/* Strata's element order of a value of ONNX dims `dims` stored as `perm`: for Strata's element
 * j, index[j] is the ONNX element. */
static void layout_index(uint32_t rank, const int64_t *dims, const uint32_t *perm, uint64_t *index, uint64_t count)
{
	uint64_t stride[ST_ONNX_MAX_RANK], s = 1;
	for (uint32_t a = rank; a-- > 0;) {
		stride[a] = s;
		s *= (uint64_t)dims[a];
	}
	uint64_t idx[ST_ONNX_MAX_RANK] = {0};
	for (uint64_t j = 0; j < count; j++) {
		uint64_t o = 0;
		for (uint32_t k = 0; k < rank; k++)
			o += idx[k] * stride[perm[k]];
		index[j] = o;
		for (uint32_t k = rank; k-- > 0;) {
			if (++idx[k] < (uint64_t)dims[perm[k]])
				break;
			idx[k] = 0;
		}
	}
}

typedef enum { PASS, FAIL, REFUSED } verdict;

static bool write_all(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	bool ok = f && fwrite(data, 1, len, f) == len;
	if (f)
		ok &= fclose(f) == 0;
	return ok;
}

/* Writes to `out` the model of `onnx` with graph inputs 1 and on (those that are not already
 * initializers) turned into initializers holding the data set's input_K.pb. */
static bool freeze_inputs(const char *onnx, const char *set, const char *out, char *why, size_t why_size)
{
	char *data = NULL;
	size_t len = 0;
	strata_error err = {0};
	if (st_read_file(onnx, "ONNX model", UINT64_C(1) << 31, &data, &len, &err)) {
		snprintf(why, why_size, "%.500s", err.message);
		return false;
	}
	Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, (const uint8_t *)data);
	free(data);
	if (!m || !m->graph) {
		snprintf(why, why_size, "model.onnx does not decode");
		if (m)
			onnx__model_proto__free_unpacked(m, NULL);
		return false;
	}
	Onnx__GraphProto *g = m->graph;
	Onnx__TensorProto **saved = g->initializer;
	size_t n_saved = g->n_initializer;
	Onnx__TensorProto **inits = calloc(n_saved + g->n_input + 1, sizeof(*inits));
	Onnx__TensorProto **made = calloc(g->n_input + 1, sizeof(*made));
	char **names = calloc(g->n_input + 1, sizeof(*names));
	size_t n_made = 0, k = 0;
	bool ok = inits && made && names;
	for (size_t i = 0; ok && i < n_saved; i++)
		inits[i] = saved[i];
	for (size_t i = 0; ok && i < g->n_input; i++) {
		bool is_init = false;
		for (size_t j = 0; j < n_saved; j++)
			is_init |= saved[j]->name && !strcmp(saved[j]->name, g->input[i]->name);
		if (is_init)
			continue;
		if (k++ == 0)
			continue; /* the data */
		if (!g->input[i]->type || g->input[i]->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE) {
			snprintf(why, why_size, "input '%s' is not a tensor", g->input[i]->name);
			ok = false;
			break;
		}
		char file[32];
		snprintf(file, sizeof(file), "input_%zu.pb", k - 1);
		char *path = join(set, file);
		char *bytes = NULL;
		size_t n = 0;
		ok = !st_read_file(path, "tensor", UINT64_C(1) << 31, &bytes, &n, &err);
		free(path);
		Onnx__TensorProto *t = ok ? onnx__tensor_proto__unpack(NULL, n, (const uint8_t *)bytes) : NULL;
		free(bytes);
		if (!t) {
			snprintf(why, why_size, "%s of the data set does not read", file);
			ok = false;
			break;
		}
		names[n_made] = t->name;
		t->name = g->input[i]->name;
		made[n_made++] = t;
		inits[n_saved + n_made - 1] = t;
	}
	if (ok) {
		g->initializer = inits;
		g->n_initializer = n_saved + n_made;
		size_t size = onnx__model_proto__get_packed_size(m);
		uint8_t *buf = malloc(size + 1);
		ok = buf && onnx__model_proto__pack(m, buf) == size && write_all(out, buf, size);
		free(buf);
		g->initializer = saved;
		g->n_initializer = n_saved;
		if (!ok)
			snprintf(why, why_size, "writing the frozen model failed");
	}
	for (size_t i = 0; i < n_made; i++) {
		made[i]->name = names[i];
		onnx__tensor_proto__free_unpacked(made[i], NULL);
	}
	free(made);
	free(names);
	free(inits);
	onnx__model_proto__free_unpacked(m, NULL);
	return ok;
}

/* Input or output i of a data set (input_i.pb, output_i.pb) into *c, with the ONNX element each
 * of Strata's elements holds (*index, malloc'd) and the layout; false with *why on failure. */
static bool read_io(const char *set, const strata_onnx_import_result *r, bool output, size_t i, st_onnx_const *c,
                    uint64_t **index, const uint32_t **perm, char *why, size_t why_size)
{
	char name[32];
	snprintf(name, sizeof(name), "%s_%zu.pb", output ? "output" : "input", i);
	char *path = join(set, name);
	strata_error err = {0};
	strata_status st = st_onnx_read_tensor_file(path, c, &err);
	free(path);
	if (st) {
		snprintf(why, why_size, "%.500s", err.message);
		return false;
	}
	uint32_t rank;
	const int64_t *dims;
	strata_onnx_import_io(r, output, i, NULL, NULL, &rank, &dims, perm);
	if (c->rank != rank) {
		snprintf(why, why_size, "%s %zu has rank %u, the model %u", output ? "output" : "input", i, c->rank, rank);
		st_onnx_const_free(c);
		return false;
	}
	*index = malloc(c->count * sizeof(uint64_t) + 1);
	layout_index(rank, c->dims, *perm, *index, c->count);
	return true;
}

/* Runs one data set; *why gets the first mismatch. */
static verdict run_set(strata_runtime *rt, strata_model *m, const char *weights, const strata_onnx_import_result *r,
                       const char *set, const options *o, char *why, size_t why_size, double *worst)
{
	size_t n_in = strata_onnx_import_io_count(r, false), n_out = strata_onnx_import_io_count(r, true);
	float **ins = calloc(n_in + 1, sizeof(float *)), **outs = calloc(n_out + 1, sizeof(float *));
	st_onnx_const *want = calloc(n_out + 1, sizeof(*want));
	uint64_t **want_index = calloc(n_out + 1, sizeof(uint64_t *));
	strata_session *s = NULL;
	verdict v = FAIL;
	strata_error err = {0};
	uint32_t batch = 0;
	for (size_t i = 0; i < n_in; i++) {
		st_onnx_const c;
		uint64_t *index;
		const uint32_t *perm;
		if (!read_io(set, r, false, i, &c, &index, &perm, why, why_size))
			goto out;
		batch = (uint32_t)c.dims[perm[0]];
		ins[i] = malloc(c.count * sizeof(float) + 1);
		for (uint64_t j = 0; j < c.count; j++)
			ins[i][j] = (float)c.v[index[j]];
		free(index);
		st_onnx_const_free(&c);
	}
	for (size_t k = 0; k < n_out; k++) {
		const uint32_t *perm;
		if (!read_io(set, r, true, k, &want[k], &want_index[k], &perm, why, why_size))
			goto out;
		outs[k] = malloc(want[k].count * sizeof(float) + 1);
	}
	if (!batch) {
		snprintf(why, why_size, "an empty batch");
		goto out;
	}
	if (strata_session_create(rt, m, batch, 1, &s, &err) || strata_session_load(s, weights, &err) ||
	    strata_session_run(s, (const float *const *)ins, batch, outs, &err)) {
		snprintf(why, why_size, "%.500s", err.message);
		goto out;
	}
	v = PASS;
	for (size_t k = 0; k < n_out && v == PASS; k++)
		for (uint64_t j = 0; j < want[k].count; j++) {
			double w = want[k].v[want_index[k][j]], g = outs[k][j];
			if (fabs(g - w) > *worst)
				*worst = fabs(g - w);
			if (!(fabs(g - w) <= o->atol + o->rtol * fabs(w)) && !(isnan(w) && isnan(g))) {
				snprintf(why, why_size, "output %zu element %llu: %.9g, expected %.9g", k,
				         (unsigned long long)want_index[k][j], g, w);
				v = FAIL;
				break;
			}
		}
out:
	strata_session_destroy(s);
	for (size_t i = 0; i < n_in; i++)
		free(ins[i]);
	for (size_t k = 0; k < n_out; k++) {
		free(outs[k]);
		free(want_index[k]);
		st_onnx_const_free(&want[k]);
	}
	free(ins);
	free(outs);
	free(want);
	free(want_index);
	return v;
}

/* Imports `onnx`; REFUSED (with the first refusal in why), FAIL or PASS (imported and loaded). */
static verdict import_case(strata_registry *reg, const char *onnx, const char *yaml, const char *weights,
                           strata_onnx_import_result **r, strata_model **m, char *why, size_t why_size)
{
	strata_onnx_import_options io = {.size = sizeof(io), .model_path = yaml, .weights_path = weights, .name = "case"};
	strata_error err = {0};
	strata_status st = strata_onnx_import(reg, onnx, &io, r, &err);
	if (st == STRATA_ERR_UNSUPPORTED) {
		const char *list = strata_onnx_import_refusals(*r);
		const char *text = list[0] ? list : err.message;
		while (*text == ' ')
			text++;
		snprintf(why, why_size, "%.*s", (int)strcspn(text, "\n"), text);
		return REFUSED;
	}
	if (st) {
		snprintf(why, why_size, "import: %.500s", err.message);
		return FAIL;
	}
	if (strata_model_load(reg, yaml, m, &err)) {
		snprintf(why, why_size, "load: %.500s", err.message);
		return FAIL;
	}
	return PASS;
}

static verdict run_case(strata_registry *reg, strata_runtime *rt, const char *dir, const options *o, char *why,
                        size_t why_size, bool *frozen, double *worst)
{
	*frozen = false;
	*worst = 0;
	char tmp[] = "/tmp/strata-onnx-XXXXXX";
	if (!mkdtemp(tmp)) {
		snprintf(why, why_size, "mkdtemp: %s", strerror(errno));
		return FAIL;
	}
	char *model_onnx = join(dir, "model.onnx"), *frozen_onnx = join(tmp, "frozen.onnx");
	char *yaml = join(tmp, "model.yaml"), *weights = join(tmp, "model.stw");
	strata_onnx_import_result *r = NULL;
	strata_model *m = NULL;
	size_t n;
	char **sets = entries(dir, "test_data_set_", &n);
	verdict v = import_case(reg, model_onnx, yaml, weights, &r, &m, why, why_size);
	if (v == REFUSED && n) {
		/* Again with the weights fed as inputs made constants (per data set, below). */
		char again[STRATA_ERROR_MAX];
		char *set = join(dir, sets[0]);
		if (freeze_inputs(model_onnx, set, frozen_onnx, again, sizeof(again))) {
			strata_onnx_import_result_free(r);
			r = NULL;
			verdict w = import_case(reg, frozen_onnx, yaml, weights, &r, &m, again, sizeof(again));
			if (w == PASS)
				*frozen = true;
			snprintf(why, why_size, "%s%.400s", w == PASS ? "" : "frozen: ", w == PASS ? "" : again);
			if (w == FAIL)
				v = FAIL;
		}
		free(set);
		if (*frozen)
			v = PASS;
	}
	if (v == PASS && !n) {
		snprintf(why, why_size, "no test_data_set_N folder");
		v = FAIL;
	}
	for (size_t i = 0; i < n && v == PASS; i++) {
		char *set = join(dir, sets[i]);
		if (*frozen && i > 0) {
			strata_model_free(m);
			strata_onnx_import_result_free(r);
			m = NULL;
			r = NULL;
			if (!freeze_inputs(model_onnx, set, frozen_onnx, why, why_size))
				v = FAIL;
			else
				v = import_case(reg, frozen_onnx, yaml, weights, &r, &m, why, why_size);
			if (v == REFUSED)
				v = FAIL;
		}
		if (v == PASS)
			v = run_set(rt, m, weights, r, set, o, why, why_size, worst);
		free(set);
	}
	free_list(sets, n);
	strata_model_free(m);
	strata_onnx_import_result_free(r);
	free(model_onnx);
	free(frozen_onnx);
	free(yaml);
	free(weights);
	remove_tree(tmp);
	return v;
}

static bool listed(char *const *list, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(list[i], name))
			return true;
	return false;
}

static bool wanted(const options *o, const char *name)
{
	return !o->n_only || listed(o->only, o->n_only, name);
}

static void one(strata_registry *reg, strata_runtime *rt, const char *dir, const options *o, counts *c)
{
	const char *slash = strrchr(dir, '/');
	const char *name = slash && slash[1] ? slash + 1 : dir;
	if (!wanted(o, name))
		return;
	char why[STRATA_ERROR_MAX + 64] = "";
	bool frozen;
	double worst;
	verdict v = run_case(reg, rt, dir, o, why, sizeof(why), &frozen, &worst);
	if (v == REFUSED && listed(o->expect, o->n_expect, name)) {
		char again[sizeof(why)];
		snprintf(again, sizeof(again), "expected to pass (--expect), refused: %.500s", why);
		snprintf(why, sizeof(why), "%s", again);
		v = FAIL;
	}
	if (v == PASS && o->report)
		snprintf(why, sizeof(why), "largest |error| %.3g", worst);
	*(v == PASS ? &c->pass : v == FAIL ? &c->fail : &c->refused) += 1;
	if (!o->quiet || v == FAIL)
		printf("%-8s %s%s%s%s\n", v == PASS ? "PASS" : v == FAIL ? "FAIL" : "REFUSED", name,
		       frozen ? " (frozen)" : "", why[0] ? ": " : "", why);
	fflush(stdout);
}

static void read_list(const char *path, char ***list, size_t *n)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "onnx_backend: %s: %s\n", path, strerror(errno));
		exit(2);
	}
	char line[512];
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "#\r\n")] = '\0';
		size_t len = strlen(line);
		while (len && line[len - 1] == ' ')
			line[--len] = '\0';
		if (!len)
			continue;
		*list = realloc(*list, (*n + 1) * sizeof(**list));
		(*list)[(*n)++] = strdup(line);
	}
	fclose(f);
}

int main(int argc, char **argv)
{
	options o = {.rtol = 1e-3, .atol = 1e-7};
	int first = 1;
	for (; first < argc && argv[first][0] == '-'; first++) {
		if (!strcmp(argv[first], "--rtol") && first + 1 < argc)
			o.rtol = atof(argv[++first]);
		else if (!strcmp(argv[first], "--atol") && first + 1 < argc)
			o.atol = atof(argv[++first]);
		else if (!strcmp(argv[first], "--list") && first + 1 < argc)
			read_list(argv[++first], &o.only, &o.n_only);
		else if (!strcmp(argv[first], "--expect") && first + 1 < argc)
			read_list(argv[++first], &o.expect, &o.n_expect);
		else if (!strcmp(argv[first], "--table"))
			o.table = true;
		else if (!strcmp(argv[first], "--quiet"))
			o.quiet = true;
		else if (!strcmp(argv[first], "--report"))
			o.report = true;
		else {
			fprintf(stderr, "usage: onnx_backend [--rtol R] [--atol A] [--list FILE] [--expect FILE] [--table] [--quiet] [--report] PATH...\n");
			return 2;
		}
	}
	if (first == argc) {
		fprintf(stderr, "usage: onnx_backend [--rtol R] [--atol A] [--list FILE] [--expect FILE] [--table] [--quiet] [--report] PATH...\n");
		return 2;
	}
	strata_registry *reg = NULL;
	strata_runtime *rt = NULL;
	strata_error err = {0};
	strata_runtime_options ro = {.size = sizeof(ro), .device = getenv("STRATA_TEST_DEVICE")};
	if (strata_registry_open(NULL, &reg, &err) || strata_runtime_create(reg, &ro, &rt, &err)) {
		fprintf(stderr, "onnx_backend: %s\n", err.message);
		return 1;
	}
	counts total = {0};
	if (o.table) {
		printf("| folder | passed | failed | refused |\n|---|---|---|---|\n");
		fflush(stdout);
	}
	for (int a = first; a < argc; a++) {
		counts c = {0};
		char *model = join(argv[a], "model.onnx");
		if (is_file(model)) {
			one(reg, rt, argv[a], &o, &c);
		} else if (is_dir(argv[a])) {
			size_t n;
			char **list = entries(argv[a], NULL, &n);
			for (size_t i = 0; i < n; i++) {
				char *dir = join(argv[a], list[i]);
				if (is_dir(dir))
					one(reg, rt, dir, &o, &c);
				free(dir);
			}
			free_list(list, n);
		} else {
			fprintf(stderr, "onnx_backend: %s is neither a test case nor a folder of them\n", argv[a]);
			c.fail++;
		}
		free(model);
		if (o.table)
			printf("| %s | %zu | %zu | %zu |\n", argv[a], c.pass, c.fail, c.refused);
		total.pass += c.pass;
		total.fail += c.fail;
		total.refused += c.refused;
	}
	fprintf(stderr, "onnx_backend: %zu passed, %zu failed, %zu refused\n", total.pass, total.fail, total.refused);
	strata_runtime_destroy(rt);
	strata_registry_close(reg);
	for (size_t i = 0; i < o.n_only; i++)
		free(o.only[i]);
	free(o.only);
	for (size_t i = 0; i < o.n_expect; i++)
		free(o.expect[i]);
	free(o.expect);
	return total.fail ? 1 : 0;
}
