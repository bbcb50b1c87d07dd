/* Process hardening: no core dumps, no reading of this process's memory by its own user. */
#ifndef SECRETFS_PROCESS_HARDENING_H
#define SECRETFS_PROCESS_HARDENING_H

#include <node_api.h>

napi_value secretfs_make_non_dumpable(napi_env env, napi_callback_info info);
napi_value secretfs_dumpable(napi_env env, napi_callback_info info);
napi_value secretfs_zero_freed_memory(napi_env env, napi_callback_info info);

#endif
