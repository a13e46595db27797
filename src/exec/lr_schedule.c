#include "exec/lr_schedule.h"

#include <math.h>
#include <string.h>

#include "model/model.h"

static double number(const st_section *sec, const char *name)
{
	const st_param_value *v = st_section_param(sec, name);
	return v ? v->f : 0.0;
}

static double integer(const st_section *sec, const char *name)
{
	const st_param_value *v = st_section_param(sec, name);
	return v ? (double)v->i : 0.0;
}

static bool flag(const st_section *sec, const char *name)
{
	const st_param_value *v = st_section_param(sec, name);
	return v && v->i != 0;
}

st_lr_schedule st_lr_schedule_from(const st_section *sec, double rate)
{
	st_lr_schedule s = {.kind = ST_LR_CONSTANT, .initial = rate};
	if (!sec || !sec->type)
		return s;
	static const struct {
		const char *name;
		st_lr_kind kind;
	} kinds[] = {{"exponential_decay", ST_LR_EXPONENTIAL}, {"inverse_time_decay", ST_LR_INVERSE_TIME},
	             {"polynomial_decay", ST_LR_POLYNOMIAL},   {"cosine_decay", ST_LR_COSINE},
	             {"piecewise_constant_decay", ST_LR_PIECEWISE}};
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcmp(sec->type, kinds[i].name))
			s.kind = kinds[i].kind;
	if (s.kind == ST_LR_PIECEWISE) {
		const st_param_value *b = st_section_param(sec, "boundaries"), *v = st_section_param(sec, "values");
		/* recipe.c checked the counts: n boundaries, n + 1 values, n below STRATA_MAX_RANK */
		s.n_boundaries = b->n_ints;
		for (uint32_t i = 0; i < b->n_ints; i++)
			s.boundaries[i] = (double)b->ints[i];
		for (uint32_t i = 0; i < v->n_floats; i++)
			s.values[i] = v->floats[i];
		return s;
	}
	s.initial = number(sec, "initial_learning_rate");
	s.decay_steps = integer(sec, "decay_steps");
	s.decay_rate = number(sec, "decay_rate");
	s.staircase = flag(sec, "staircase");
	s.end = number(sec, "end_learning_rate");
	s.power = number(sec, "power");
	s.cycle = flag(sec, "cycle");
	s.alpha = number(sec, "alpha");
	s.warmup_target = number(sec, "warmup_target");
	s.warmup_steps = integer(sec, "warmup_steps");
	return s;
}

/* Keras' CosineDecay._decay_function: from `from` down to alpha * from over decay_steps. */
static double cosine(const st_lr_schedule *s, double step, double from)
{
	const double decayed = 0.5 * (1.0 + cos(M_PI * step / s->decay_steps));
	return from * ((1.0 - s->alpha) * decayed + s->alpha);
}

double st_lr_at(const st_lr_schedule *s, uint64_t iterations)
{
	double step = (double)iterations, p;
	switch (s->kind) {
	case ST_LR_CONSTANT:
		return s->initial;
	case ST_LR_EXPONENTIAL:
		p = step / s->decay_steps;
		return s->initial * pow(s->decay_rate, s->staircase ? floor(p) : p);
	case ST_LR_INVERSE_TIME:
		p = step / s->decay_steps;
		return s->initial / (1.0 + s->decay_rate * (s->staircase ? floor(p) : p));
	case ST_LR_POLYNOMIAL: {
		double steps = s->decay_steps;
		if (s->cycle)
			steps *= step == 0.0 ? 1.0 : ceil(step / steps); /* the multiple of decay_steps step is in */
		else
			step = fmin(step, steps);
		return (s->initial - s->end) * pow(1.0 - step / steps, s->power) + s->end;
	}
	case ST_LR_COSINE:
		if (s->warmup_target == 0.0) /* no warmup */
			return cosine(s, fmin(step, s->decay_steps), s->initial);
		step = fmin(step, s->decay_steps + s->warmup_steps);
		if (step < s->warmup_steps) /* linear, from the initial rate to the target */
			return (s->warmup_target - s->initial) * (step / s->warmup_steps) + s->initial;
		return cosine(s, step - s->warmup_steps, s->warmup_target);
	case ST_LR_PIECEWISE:
		for (uint32_t i = 0; i < s->n_boundaries; i++)
			if (step <= s->boundaries[i])
				return s->values[i];
		return s->values[s->n_boundaries];
	}
	return s->initial;
}
