/* fuzz_core_tcp.c: fuzz_core.c with each input sent as one TCP connection's bytes (see there). */
#define FUZZ_CORE_TCP 1
#include "fuzz_core.c"
