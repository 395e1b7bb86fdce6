/* fuzz_core_auth.c: fuzz_core.c with registration and call authentication on (see there). */
#define FUZZ_CORE_AUTH 1
#include "fuzz_core.c"
