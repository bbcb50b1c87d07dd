/* Process hardening, as ssh-agent and gpg-agent do it: a non-dumpable process writes no core dump,
 * and the kernel refuses other processes of the same user ptrace and /proc/PID/mem, environ, maps. */
#include "process-hardening.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

static napi_value throw_errno(napi_env env, const char *call, int err) {
  char message[200];
  snprintf(message, sizeof message, "%s failed: %s", call, strerror(err));
  napi_throw_error(env, NULL, message);
  return NULL;
}

/* makeNonDumpable(): sets RLIMIT_CORE to 0 (soft and hard) and PR_SET_DUMPABLE to 0. */
napi_value secretfs_make_non_dumpable(napi_env env, napi_callback_info info) {
  (void)info;
  /* The limit too: execve sets the dumpable flag back in whatever this process starts, the limit
   * is inherited and stays. */
  struct rlimit none = {0, 0};
  if (setrlimit(RLIMIT_CORE, &none) != 0) return throw_errno(env, "setrlimit(RLIMIT_CORE, 0)", errno);
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return throw_errno(env, "prctl(PR_SET_DUMPABLE, 0)", errno);
  return NULL;
}

/* dumpable(): whether the kernel still lets this process be dumped or traced by its user. */
napi_value secretfs_dumpable(napi_env env, napi_callback_info info) {
  (void)info;
  int state = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
  if (state < 0) return throw_errno(env, "prctl(PR_GET_DUMPABLE)", errno);
  napi_value result;
  if (napi_get_boolean(env, state != 0, &result) != napi_ok) return NULL;
  return result;
}

/* zeroFreedMemory(): glibc fills each freed heap chunk with zeros from now on (M_PERTURB, whose low
 * byte is the fill: 0x100 fills with 0). Buffers that held a secret and were freed without being
 * zeroed, by libfuse or by Node's stream code, then keep nothing. New chunks are filled with 0xff. */
napi_value secretfs_zero_freed_memory(napi_env env, napi_callback_info info) {
  (void)info;
  if (mallopt(M_PERTURB, 0x100) != 1) return throw_errno(env, "mallopt(M_PERTURB)", EINVAL);
  return NULL;
}
