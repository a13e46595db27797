/* Vector types (floatv, intv), loads and stores of VW floats (1, 2, 4, 8 or 16), prepended at build time to every
 * program that uses them (cl/meson.build, plugins/meson.build). The host passes -DVW=N, with N
 * dividing the row it sweeps; plugins/common/tune.h holds the defaults. */
#ifndef VW
#define VW 16
#endif
#if VW == 1
typedef float floatv;
typedef int intv;
#define VLOAD(i, p) ((p)[i])
#define VSTORE(v, i, p) ((p)[i] = (v))
#elif VW == 2
typedef float2 floatv;
typedef int2 intv;
#define VLOAD(i, p) vload2(i, p)
#define VSTORE(v, i, p) vstore2(v, i, p)
#elif VW == 4
typedef float4 floatv;
typedef int4 intv;
#define VLOAD(i, p) vload4(i, p)
#define VSTORE(v, i, p) vstore4(v, i, p)
#elif VW == 8
typedef float8 floatv;
typedef int8 intv;
#define VLOAD(i, p) vload8(i, p)
#define VSTORE(v, i, p) vstore8(v, i, p)
#elif VW == 16
typedef float16 floatv;
typedef int16 intv;
#define VLOAD(i, p) vload16(i, p)
#define VSTORE(v, i, p) vstore16(v, i, p)
#else
#error "VW must be 1, 2, 4, 8 or 16"
#endif
