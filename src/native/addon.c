/* The secretfs_native addon's entry point: one exported function per native capability. */
#include <node_api.h>

#include "process-hardening.h"

NAPI_MODULE_INIT() {
  napi_property_descriptor functions[] = {
      {"makeNonDumpable", NULL, secretfs_make_non_dumpable, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dumpable", NULL, secretfs_dumpable, NULL, NULL, NULL, napi_enumerable, NULL},
      {"zeroFreedMemory", NULL, secretfs_zero_freed_memory, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions) != napi_ok) return NULL;
  return exports;
}
