// secretfs's FUSE binding (the secretfs_fuse addon): libfuse 3's low-level API, driven by Node's event loop. The session's
// /dev/fuse descriptor is non-blocking and polled by libuv on the JS thread; each readable event
// reads and dispatches the requests waiting, calling the JS handler of each operation with a
// request handle that JS answers now or later (replyErr, replyEntry, ...). No thread hops: the
// kernel's request reaches JS, and the answer the kernel, on one thread. Invalidations, which can
// block on kernel locks held by requests only the JS thread can answer, run on a thread of the
// session's own, never on libuv's pool (whose threads a request's own work may be waiting for).
// Nothing here knows what a secret is: it speaks inodes and bytes.

#define FUSE_USE_VERSION 35
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <time.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <node_api.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#define CHECK(call)                                                                                                    \
  do {                                                                                                                 \
    if ((call) != napi_ok) return NULL;                                                                                \
  } while (0)

/**
 * Requests dispatched per readable event before others on the loop get their turn. A session
 * that found a request at every read it made reads twice as many at the next event, up to BATCH;
 * one that found the device empty reads one: a read that finds nothing costs a system call, and a
 * program's requests one after another (open, write, fsync, close) always find it empty after the
 * first. The poll is level-triggered, so a request left unread wakes the loop again.
 */
#define BATCH 64

/**
 * Microseconds the JS thread keeps looking for the next request, yielding the CPU between looks,
 * once it has answered every request it read, before it goes back to sleep in the event loop. A
 * program's requests come one after another (open, read, close), each sent moments after the last
 * was answered: a thread still looking takes it at once, where a sleeping one must first be woken,
 * which on a VM costs tens of microseconds when the program runs on another CPU. Not while any
 * request waits for an answer from elsewhere (the store's commit, an upstream), so those are never
 * delayed, but once the last is answered (look_later); and the looking yields the CPU to whatever
 * else wants it.
 */
#define SPIN_US 50

enum op {
  OP_INIT,
  OP_LOOKUP,
  OP_FORGET,
  OP_GETATTR,
  OP_SETATTR,
  OP_MKDIR,
  OP_UNLINK,
  OP_RMDIR,
  OP_RENAME,
  OP_OPEN,
  OP_READ,
  OP_WRITE,
  OP_FLUSH,
  OP_RELEASE,
  OP_FSYNC,
  OP_OPENDIR,
  OP_READDIRPLUS,
  OP_RELEASEDIR,
  OP_CREATE,
  OP_UNMOUNTED,
  OP_COUNT,
};

static const char *OP_NAMES[OP_COUNT] = {
    "init",  "lookup", "forget", "getattr", "setattr", "mkdir",   "unlink",      "rmdir",      "rename",    "open",
    "read",  "write",  "flush",  "release", "fsync",   "opendir", "readdirplus", "releasedir", "create",    "unmounted",
};

/** The lowest bit of a handle (fh) is ours: set for a read-only one. JS keeps its number in the others. */
#define FH_READ_ONLY 1u

/**
 * An inode whose read-only opens the addon answers by itself, as JS asked (js_grant): with its
 * handle number, the page cache kept, and no FLUSH; so are the RELEASEs of handles with that
 * number while the grant lasts, and its GETATTRs once JS has given the attributes
 * (js_grant_attributes). JS is not woken for any of them; at the revoke it learns how many handles
 * the addon opened and did not see released (`held`, fewer than none if some it released were JS's).
 */
struct grant {
  uint64_t ino; /* 0: a free slot */
  uint64_t fh;
  int64_t held;
  bool has_attr;
  double attr_timeout;
  struct stat attr;
};

/** The grants, by inode: open addressing, linear probing, removal by backward shift. */
struct grants {
  struct grant *slots;
  size_t cap; /* a power of two, or 0 */
  size_t count;
};

struct session {
  napi_env env;
  struct fuse_session *se;
  struct fuse_buf buf;
  uv_poll_t poll;
  bool polling;
  /** Looks for the next request after an answer JS sent later (see look_later). */
  uv_prepare_t look;
  /** In on_readable, which looks by itself once it has read every request. */
  bool serving;
  /** Requests the next readable event reads at most (see BATCH). */
  int budget;
  /** Requests given to JS and not yet answered (see SPIN_US). */
  unsigned unanswered;
  bool closed;
  napi_ref handlers[OP_COUNT];
  napi_ref self;
  napi_async_context async;
  /**
   * Requests JS still holds, the invalidator's wake-up handle and the look handle: the session is
   * freed after the last.
   */
  unsigned refs;
  bool poll_closed;
  /** Unmounted, with the libfuse session kept until the invalidation thread has ended. */
  bool destroy_pending;
  char *mountpoint;
  struct invalidator *inv;
  /** Retrievals asked of the kernel and not yet answered (see js_retrieve). */
  struct retrieval *retrievals;
  uint64_t next_retrieval;
  struct grants grants;
};

/** A retrieval of an inode's cached content: JS's callback, called once with what came back. */
struct retrieval {
  struct retrieval *next;
  uint64_t id;
  napi_ref callback;
};

/** One kernel request, answered once. JS holds it as an external; GC answers one never answered. */
struct request {
  fuse_req_t req;
  struct session *s;
  bool answered;
  /** Answered EINTR when the kernel interrupts it (an operation with no effect to undo). */
  bool interruptible;
  /** A READDIRPLUS (not a plain READDIR): its entries carry attributes and lookups. */
  bool plus;
};

static size_t grant_home(const struct grants *g, uint64_t ino) {
  return (size_t)((ino * 0x9E3779B97F4A7C15ull) >> 32) & (g->cap - 1);
}

static struct grant *grant_find(struct grants *g, uint64_t ino) {
  if (g->count == 0) return NULL;
  for (size_t i = grant_home(g, ino);; i = (i + 1) & (g->cap - 1)) {
    if (g->slots[i].ino == ino) return &g->slots[i];
    if (g->slots[i].ino == 0) return NULL;
  }
}

/** Adds a grant; false if `ino` has one already, or memory ran out. */
static bool grant_add(struct grants *g, uint64_t ino, uint64_t fh) {
  if (grant_find(g, ino)) return false;
  if ((g->count + 1) * 4 > g->cap * 3) {
    // Grown to twice the size (kept at most three quarters full), every grant placed anew.
    struct grants bigger = {.cap = g->cap ? g->cap * 2 : 64};
    if (!(bigger.slots = calloc(bigger.cap, sizeof *bigger.slots))) return false;
    for (size_t i = 0; i < g->cap; i++)
      if (g->slots[i].ino) {
        size_t j = grant_home(&bigger, g->slots[i].ino);
        while (bigger.slots[j].ino) j = (j + 1) & (bigger.cap - 1);
        bigger.slots[j] = g->slots[i];
      }
    bigger.count = g->count;
    free(g->slots);
    *g = bigger;
  }
  size_t i = grant_home(g, ino);
  while (g->slots[i].ino) i = (i + 1) & (g->cap - 1);
  g->slots[i] = (struct grant){.ino = ino, .fh = fh};
  g->count++;
  return true;
}

/** Removes the grant of `ino` into `*held` (see struct grant); false if it had none. */
static bool grant_remove(struct grants *g, uint64_t ino, int64_t *held) {
  struct grant *at = grant_find(g, ino);
  if (!at) return false;
  *held = at->held;
  size_t hole = (size_t)(at - g->slots);
  // Each grant after the hole, up to a free slot, moves into it unless its home lies between.
  for (size_t i = (hole + 1) & (g->cap - 1); g->slots[i].ino; i = (i + 1) & (g->cap - 1)) {
    size_t home = grant_home(g, g->slots[i].ino);
    if (((i - home) & (g->cap - 1)) >= ((i - hole) & (g->cap - 1))) {
      g->slots[hole] = g->slots[i];
      hole = i;
    }
  }
  g->slots[hole].ino = 0;
  g->count--;
  return true;
}

/** The session whose handler is running (one thread, one at a time). */
static struct session *current;

static void session_free(struct session *s);

/** Drops one of the session's references; the last, once it is unmounted, frees it. */
static void session_unref(struct session *s) {
  s->refs--;
  if (s->poll_closed && s->refs == 0) session_free(s);
}

/**
 * Ends the retrieval `id`, if it is still waited for: its callback gets (result, content) with
 * content a Buffer, or undefined when result is an error.
 */
static void retrieval_done(struct session *s, uint64_t id, int result, const struct fuse_bufvec *content);

// ---- helpers ----

static napi_value undefined(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

static napi_value number(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

static napi_value string(napi_env env, const char *s) {
  napi_value v;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  return v;
}

/** Whether `s` is UTF-8 (RFC 3629: no overlong forms, surrogates or code points past U+10FFFF). */
static bool utf8_valid(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    unsigned char c = *p++, lo = 0x80, hi = 0xBF;
    int more;
    if (c < 0x80) continue;
    if (c >= 0xC2 && c <= 0xDF) more = 1;
    else if (c == 0xE0) more = 2, lo = 0xA0;
    else if (c == 0xED) more = 2, hi = 0x9F;
    else if (c >= 0xE1 && c <= 0xEF) more = 2;
    else if (c == 0xF0) more = 3, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) more = 3;
    else if (c == 0xF4) more = 3, hi = 0x8F;
    else return false;
    // The terminating NUL fails these, so a sequence cut short is refused too.
    if (*p < lo || *p > hi) return false;
    for (p++; --more > 0; p++)
      if (*p < 0x80 || *p > 0xBF) return false;
  }
  return true;
}

/**
 * A name JS could be given: one that is not UTF-8 would reach it with U+FFFD for what could not be
 * decoded, the same name as other undecodable ones, so it is answered `errno` here. (A lookup
 * finds none such: ENOENT; a name to be made is refused: EILSEQ.)
 */
static bool name_ok(fuse_req_t req, const char *name, int errno_) {
  if (utf8_valid(name)) return true;
  fuse_reply_err(req, errno_);
  return false;
}

static void look_later(struct session *s);

/** Marks `r` answered (the caller answers it). */
static void answer(struct request *r) {
  r->answered = true;
  if (--r->s->unanswered == 0) look_later(r->s);
}

static void request_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  struct request *r = data;
  // A request JS dropped without answering would leave the caller waiting forever. Once the
  // libfuse session is destroyed, the request went with it, and with it anyone waiting.
  if (!r->answered) {
    answer(r);
    if (r->s->se) fuse_reply_err(r->req, EIO);
  }
  struct session *s = r->s;
  free(r);
  session_unref(s);
}

static void on_interrupt(fuse_req_t req, void *data) {
  (void)req;
  struct request *r = data;
  if (r->interruptible && !r->answered) {
    answer(r);
    fuse_reply_err(r->req, EINTR);
  }
}

static napi_value make_request(struct session *s, fuse_req_t req, bool interruptible) {
  struct request *r = calloc(1, sizeof *r);
  if (!r) {
    fuse_reply_err(req, ENOMEM);
    return NULL;
  }
  r->req = req;
  r->s = s;
  r->interruptible = interruptible;
  napi_value ext;
  if (napi_create_external(s->env, r, request_finalize, NULL, &ext) != napi_ok) {
    fuse_reply_err(req, EIO);
    free(r);
    return NULL;
  }
  s->refs++;
  s->unanswered++;
  fuse_req_interrupt_func(req, on_interrupt, r);
  return ext;
}

/** Calls the JS handler of `op` with `argv`; a throw answers the request (if any) with EIO. */
static void call(struct session *s, enum op op, size_t argc, napi_value *argv, struct request *r) {
  napi_env env = s->env;
  napi_value fn, recv, result;
  if (!s->handlers[op] || napi_get_reference_value(env, s->handlers[op], &fn) != napi_ok || !fn) {
    if (r && !r->answered) {
      answer(r);
      fuse_reply_err(r->req, ENOSYS);
    }
    return;
  }
  napi_get_undefined(env, &recv);
  napi_status st = napi_call_function(env, recv, fn, argc, argv, &result);
  if (st == napi_pending_exception) {
    napi_value e;
    napi_get_and_clear_last_exception(env, &e);
    if (r && !r->answered) {
      answer(r);
      fuse_reply_err(r->req, EIO);
    }
  }
}

static struct request *request_of(napi_env env, napi_value v) {
  void *data = NULL;
  if (napi_get_value_external(env, v, &data) != napi_ok) return NULL;
  return data;
}

/** Dispatches a request to JS: the handler gets (request, ...args). */
static void dispatch(fuse_req_t req, enum op op, bool interruptible, size_t argc, napi_value *args) {
  struct session *s = current;
  napi_value argv[8];
  napi_value ext = make_request(s, req, interruptible);
  if (!ext) return;
  argv[0] = ext;
  for (size_t i = 0; i < argc; i++) argv[i + 1] = args[i];
  call(s, op, argc + 1, argv, request_of(s->env, ext));
}

static napi_value ino_value(napi_env env, fuse_ino_t ino) { return number(env, (double)ino); }

// ---- operations ----

static void op_init(void *userdata, struct fuse_conn_info *conn) {
  (void)userdata;
  // READDIRPLUS on every chunk: `ls -l` needs no LOOKUP per name.
  if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS;
  conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
  if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
  // Contents change only through this filesystem or by an explicit invalidation.
  conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
  conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
  call(current, OP_INIT, 0, NULL, NULL);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  if (!name_ok(req, name, ENOENT)) return;
  napi_env env = current->env;
  napi_value a[] = {ino_value(env, parent), string(env, name)};
  dispatch(req, OP_LOOKUP, true, 2, a);
}

static void forget_one(fuse_ino_t ino, uint64_t nlookup) {
  napi_env env = current->env;
  napi_value a[] = {ino_value(env, ino), number(env, (double)nlookup)};
  call(current, OP_FORGET, 2, a, NULL);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  forget_one(ino, nlookup);
  fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
  for (size_t i = 0; i < count; i++) forget_one(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

static napi_value fh_value(napi_env env, struct fuse_file_info *fi) {
  return fi ? number(env, (double)fi->fh) : undefined(env);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  struct grant *g = grant_find(&current->grants, ino);
  // Asked of the inode, or through a handle of the grant: not of another handle, which has its own.
  if (g && g->has_attr && (!fi || fi->fh == (g->fh | FH_READ_ONLY))) {
    fuse_reply_attr(req, &g->attr, g->attr_timeout);
    return;
  }
  napi_env env = current->env;
  napi_value a[] = {ino_value(env, ino), fh_value(env, fi)};
  dispatch(req, OP_GETATTR, true, 2, a);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi) {
  napi_env env = current->env;
  napi_value a[] = {ino_value(env, ino), number(env, to_set), number(env, (double)attr->st_size), fh_value(env, fi)};
  dispatch(req, OP_SETATTR, false, 4, a);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
  if (!name_ok(req, name, EILSEQ)) return;
  napi_env env = current->env;
  napi_value a[] = {ino_value(env, parent), string(env, name), number(env, mode)};
  dispatch(req, OP_MKDIR, false, 3, a);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
  if (!name_ok(req, name, ENOENT)) return;
  napi_env env = current->env;
  napi_value a[] = {ino_value(env, parent), string(env, name)};
  dispatch(req, OP_UNLINK, false, 2, a);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
  if (!name_ok(req, name, ENOENT)) return;
  napi_env env = current->env;
  napi_value a[] = {ino_value(env, parent), string(env, name)};
  dispatch(req, OP_RMDIR, false, 2, a);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname,
                      unsigned int flags) {
  if (!name_ok(req, name, ENOENT) || !name_ok(req, newname, EILSEQ)) return;
  napi_env env = current->env;
  napi_value a[] = {ino_value(env, parent), string(env, name), ino_value(env, newparent), string(env, newname),
                    number(env, flags)};
  dispatch(req, OP_RENAME, false, 5, a);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  struct grant *g = grant_find(&current->grants, ino);
  if (g && (fi->flags & (O_ACCMODE | O_TRUNC)) == O_RDONLY) {
    struct fuse_file_info open = {.fh = g->fh | FH_READ_ONLY, .keep_cache = 1, .noflush = 1};
    // An open the kernel gave up on (interrupted) gets no RELEASE: it is not counted.
    if (fuse_reply_open(req, &open) == 0) g->held++;
    return;
  }
  napi_env env = current->env;
  napi_value a[] = {ino_value(env, ino), number(env, fi->flags)};
  dispatch(req, OP_OPEN, false, 2, a);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) {
  if (!name_ok(req, name, EILSEQ)) return;
  napi_env env = current->env;
  napi_value a[] = {ino_value(env, parent), string(env, name), number(env, mode), number(env, fi->flags)};
  dispatch(req, OP_CREATE, false, 4, a);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  napi_env env = current->env;
  napi_value a[] = {ino_value(env, ino), number(env, (double)size), number(env, (double)off), fh_value(env, fi)};
  dispatch(req, OP_READ, true, 4, a);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi) {
  napi_env env = current->env;
  napi_value data;
  void *copy;
  if (napi_create_buffer_copy(env, size, buf, &copy, &data) != napi_ok) {
    fuse_reply_err(req, ENOMEM);
    return;
  }
  // The receive buffer held plaintext: from here it lives only in what JS keeps.
  memset((char *)buf, 0, size);
  napi_value a[] = {ino_value(env, ino), data, number(env, (double)off), fh_value(env, fi)};
  dispatch(req, OP_WRITE, false, 4, a);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  // A read-only handle has nothing to commit: answered here, JS never woken.
  if (fi->fh & FH_READ_ONLY) {
    fuse_reply_err(req, 0);
    return;
  }
  napi_env env = current->env;
  napi_value a[] = {ino_value(env, ino), fh_value(env, fi)};
  dispatch(req, OP_FLUSH, false, 2, a);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  struct grant *g = grant_find(&current->grants, ino);
  if (g && fi->fh == (g->fh | FH_READ_ONLY)) {
    // A handle of the grant: nothing to let go but a count.
    g->held--;
    fuse_reply_err(req, 0);
    return;
  }
  napi_env env = current->env;
  napi_value a[] = {ino_value(env, ino), fh_value(env, fi)};
  if (fi->fh & FH_READ_ONLY) {
    // Nothing to commit: the kernel is answered at once, and JS only lets the handle go.
    fuse_reply_err(req, 0);
    napi_value argv[] = {undefined(env), a[0], a[1]};
    call(current, OP_RELEASE, 3, argv, NULL);
    return;
  }
  dispatch(req, OP_RELEASE, false, 2, a);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  napi_env env = current->env;
  napi_value a[] = {ino_value(env, ino), number(env, datasync), fh_value(env, fi)};
  dispatch(req, OP_FSYNC, false, 3, a);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)fi;
  napi_env env = current->env;
  napi_value a[] = {ino_value(env, ino)};
  dispatch(req, OP_OPENDIR, false, 1, a);
}

static void readdir_any(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi, bool plus) {
  napi_env env = current->env;
  napi_value a[] = {ino_value(env, ino), number(env, (double)size), number(env, (double)off), fh_value(env, fi)};
  napi_value argv[5];
  napi_value ext = make_request(current, req, true);
  if (!ext) return;
  struct request *r = request_of(env, ext);
  r->plus = plus;
  argv[0] = ext;
  memcpy(argv + 1, a, sizeof a);
  call(current, OP_READDIRPLUS, 5, argv, r);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  readdir_any(req, ino, size, off, fi, true);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  // Asked only if READDIRPLUS was refused at INIT: the same handler; replyDirents then builds
  // plain entries, and the kernel counts no lookups.
  readdir_any(req, ino, size, off, fi, false);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  napi_env env = current->env;
  fuse_reply_err(req, 0);
  napi_value argv[] = {undefined(env), ino_value(env, ino), fh_value(env, fi)};
  call(current, OP_RELEASEDIR, 3, argv, NULL);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino) {
  (void)ino;
  struct statvfs st = {0};
  st.f_bsize = 4096;
  st.f_frsize = 4096;
  st.f_namemax = 255;
  fuse_reply_statfs(req, &st);
}

static void op_refuse(fuse_req_t req) { fuse_reply_err(req, EPERM); }
static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) {
  (void)link, (void)parent, (void)name;
  op_refuse(req);
}
static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
  (void)ino, (void)newparent, (void)newname;
  op_refuse(req);
}
static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
  (void)parent, (void)name, (void)mode, (void)rdev;
  op_refuse(req);
}

/** The kernel's answer to a retrieval: the cached content of the inode, as far as it had it. */
static void op_retrieve_reply(fuse_req_t req, void *cookie, fuse_ino_t ino, off_t offset, struct fuse_bufvec *bufv) {
  (void)ino, (void)offset;
  fuse_reply_none(req);
  retrieval_done(current, (uint64_t)(uintptr_t)cookie, 0, bufv);
  // The receive buffer held plaintext: from here it lives only in what JS keeps.
  for (size_t i = bufv->idx; i < bufv->count; i++)
    if (!(bufv->buf[i].flags & FUSE_BUF_IS_FD) && bufv->buf[i].mem) memset(bufv->buf[i].mem, 0, bufv->buf[i].size);
}

static const struct fuse_lowlevel_ops OPS = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .rename = op_rename,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .flush = op_flush,
    .release = op_release,
    .fsync = op_fsync,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .releasedir = op_releasedir,
    .statfs = op_statfs,
    .create = op_create,
    .symlink = op_symlink,
    .link = op_link,
    .mknod = op_mknod,
    .retrieve_reply = op_retrieve_reply,
};

// ---- the loop ----

static void session_stop_polling(struct session *s) {
  if (s->polling) {
    uv_poll_stop(&s->poll);
    s->polling = false;
  }
}

static bool awaited(struct session *s);
static void on_look(uv_prepare_t *handle);

static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)events;
  struct session *s = handle->data;
  napi_env env = s->env;
  s->serving = true;
  // Requests taken by looking (SPIN_US) before the loop gets its turn again, as BATCH.
  int looked = 0;
again:;
  napi_handle_scope hs;
  napi_callback_scope cs;
  napi_value resource;
  napi_open_handle_scope(env, &hs);
  napi_get_reference_value(env, s->self, &resource);
  // A callback scope: promise jobs the handlers queued run when it closes, as after any I/O.
  napi_open_callback_scope(env, resource, s->async, &cs);
  bool ended = status < 0;
  bool drained = false;
  int budget = s->budget;
  s->budget = budget < BATCH ? budget * 2 : BATCH;
  for (int i = 0; i < budget && !ended; i++) {
    int res = fuse_session_receive_buf(s->se, &s->buf);
    if (res == -EINTR || res == -EAGAIN) {
      s->budget = 1;
      drained = true;
      break;
    }
    if (res <= 0 || fuse_session_exited(s->se)) {
      // ENODEV: unmounted by someone else (fusermount -u, umount -l).
      ended = true;
      break;
    }
    current = s;
    fuse_session_process_buf(s->se, &s->buf);
    current = NULL;
  }
  if (ended && !s->closed) {
    session_stop_polling(s);
    call(s, OP_UNMOUNTED, 0, NULL, NULL);
  }
  napi_close_callback_scope(env, cs);
  napi_close_handle_scope(env, hs);
  if (drained && s->unanswered == 0 && !s->closed && ++looked < BATCH && awaited(s)) goto again;
  s->serving = false;
}

/**
 * The last request JS held was answered later, outside on_readable (a commit's FSYNC, an
 * upstream's answer): the program that sent it may send the next at once, which would otherwise
 * wake a thread asleep in the event loop (see SPIN_US). The looking is done once the loop has run
 * what is due, just before it would sleep, and a request found is read there.
 */
static void look_later(struct session *s) {
  if (!s->serving && s->polling) uv_prepare_start(&s->look, on_look);
}

static void on_look(uv_prepare_t *handle) {
  struct session *s = handle->data;
  uv_prepare_stop(handle);
  if (s->unanswered == 0 && s->polling && awaited(s)) on_readable(&s->poll, 0, UV_READABLE);
}

/**
 * Whether a request came within SPIN_US, looked for between yields of the CPU: called once every
 * request read is answered, so the program that sent them is likely to send the next at once.
 */
static bool awaited(struct session *s) {
  struct pollfd pfd = {.fd = fuse_session_fd(s->se), .events = POLLIN};
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  do {
    sched_yield();
    if (poll(&pfd, 1, 0) > 0) return true;
    clock_gettime(CLOCK_MONOTONIC, &t);
  } while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < SPIN_US * 1000L);
  return false;
}

// ---- JS API ----

static void session_free(struct session *s) {
  free(s->grants.slots);
  for (int i = 0; i < OP_COUNT; i++)
    if (s->handlers[i]) napi_delete_reference(s->env, s->handlers[i]);
  if (s->self) napi_delete_reference(s->env, s->self);
  if (s->async) napi_async_destroy(s->env, s->async);
  free(s->buf.mem);
  free(s->mountpoint);
  free(s);
}

static void on_look_closed(uv_handle_t *h) { session_unref(h->data); }

static void on_poll_closed(uv_handle_t *h) {
  struct session *s = h->data;
  s->poll_closed = true;
  if (s->refs == 0) session_free(s);
}

/** mount(mountpoint, options: string, handlers: object): session */
static napi_value js_mount(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char mountpoint[4096], options[4096];
  size_t len;
  CHECK(napi_get_value_string_utf8(env, argv[0], mountpoint, sizeof mountpoint, &len));
  CHECK(napi_get_value_string_utf8(env, argv[1], options, sizeof options, &len));

  struct session *s = calloc(1, sizeof *s);
  if (!s) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  s->env = env;
  s->mountpoint = strdup(mountpoint);
  for (int i = 0; i < OP_COUNT; i++) {
    napi_value fn;
    bool has = false;
    napi_has_named_property(env, argv[2], OP_NAMES[i], &has);
    if (!has) continue;
    napi_get_named_property(env, argv[2], OP_NAMES[i], &fn);
    napi_valuetype t;
    napi_typeof(env, fn, &t);
    if (t == napi_function) napi_create_reference(env, fn, 1, &s->handlers[i]);
  }
  char *args_v[] = {"secretfs", "-o", options};
  struct fuse_args args = FUSE_ARGS_INIT(3, args_v);
  s->se = fuse_session_new(&args, &OPS, sizeof OPS, s);
  if (!s->se) {
    session_free(s);
    napi_throw_error(env, "EINVAL", "libfuse refused the mount options");
    return NULL;
  }
  if (fuse_session_mount(s->se, mountpoint) != 0) {
    fuse_session_destroy(s->se);
    session_free(s);
    napi_throw_error(env, "EMOUNT", "mounting failed (see the daemon's standard error for libfuse's reason)");
    return NULL;
  }
  int fd = fuse_session_fd(s->se);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

  napi_value self;
  CHECK(napi_create_object(env, &self));
  CHECK(napi_create_reference(env, self, 1, &s->self));
  CHECK(napi_async_init(env, self, string(env, "secretfs:fuse"), &s->async));
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  uv_poll_init(loop, &s->poll, fd);
  s->poll.data = s;
  uv_poll_start(&s->poll, UV_READABLE, on_readable);
  s->polling = true;
  uv_prepare_init(loop, &s->look);
  s->look.data = s;
  // Started only for a moment: never what keeps the process alive.
  uv_unref((uv_handle_t *)&s->look);
  s->refs++;
  s->budget = 1;

  napi_value ext;
  CHECK(napi_create_external(env, s, NULL, NULL, &ext));
  return ext;
}

static struct session *session_of(napi_env env, napi_value v) {
  void *data = NULL;
  if (napi_get_value_external(env, v, &data) != napi_ok || !data) {
    napi_throw_type_error(env, NULL, "not a session");
    return NULL;
  }
  return data;
}

static void invalidator_stop(struct session *s);
static void retrievals_end(struct session *s);

/** unmount(session): stops polling, unmounts (if still mounted) and frees the session. */
static napi_value js_unmount(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct session *s = session_of(env, argv[0]);
  if (!s || s->closed) return undefined(env);
  s->closed = true;
  session_stop_polling(s);
  retrievals_end(s);
  // The poll goes before the descriptor it watches.
  uv_close((uv_handle_t *)&s->look, on_look_closed);
  uv_close((uv_handle_t *)&s->poll, on_poll_closed);
  fuse_session_unmount(s->se);
  if (s->inv) {
    // The thread may be inside a notification: the session (and its descriptor) lives until it ends.
    s->destroy_pending = true;
    invalidator_stop(s);
  } else {
    fuse_session_destroy(s->se);
    s->se = NULL;
  }
  return undefined(env);
}

static struct request *take(napi_env env, napi_value v) {
  struct request *r = request_of(env, v);
  if (!r || r->answered) return NULL;
  answer(r);
  // libfuse freed the request with its session. Between the unmount and that, answers still go
  // out: a caller the kernel still waits for may hold a lock an invalidation is waiting on.
  if (!r->s->se) return NULL;
  return r;
}

static bool get_double(napi_env env, napi_value obj, const char *key, double *out) {
  napi_value v;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok) return false;
  return napi_get_value_double(env, v, out) == napi_ok;
}

static bool get_bool(napi_env env, napi_value obj, const char *key) {
  napi_value v;
  bool b = false;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok || napi_get_value_bool(env, v, &b) != napi_ok) return false;
  return b;
}

/** An attribute object {ino, mode, nlink, uid, gid, size, atime, mtime, ctime (ms)} as a struct stat. */
static void stat_of(napi_env env, napi_value obj, struct stat *st) {
  double d;
  memset(st, 0, sizeof *st);
  if (get_double(env, obj, "ino", &d)) st->st_ino = (ino_t)d;
  if (get_double(env, obj, "mode", &d)) st->st_mode = (mode_t)d;
  if (get_double(env, obj, "nlink", &d)) st->st_nlink = (nlink_t)d;
  if (get_double(env, obj, "uid", &d)) st->st_uid = (uid_t)d;
  if (get_double(env, obj, "gid", &d)) st->st_gid = (gid_t)d;
  if (get_double(env, obj, "size", &d)) st->st_size = (off_t)d;
  st->st_blksize = 4096;
  st->st_blocks = (st->st_size + 511) / 512;
  const char *times[] = {"atime", "mtime", "ctime"};
  struct timespec *ts[] = {&st->st_atim, &st->st_mtim, &st->st_ctim};
  for (int i = 0; i < 3; i++)
    if (get_double(env, obj, times[i], &d)) {
      ts[i]->tv_sec = (time_t)(d / 1000);
      ts[i]->tv_nsec = (long)((d - (double)ts[i]->tv_sec * 1000) * 1e6);
    }
}

/** An entry object {ino, attr, attrTimeout, entryTimeout} (seconds) as fuse_entry_param. */
static void entry_of(napi_env env, napi_value obj, struct fuse_entry_param *e) {
  double d;
  memset(e, 0, sizeof *e);
  napi_value attr;
  if (napi_get_named_property(env, obj, "attr", &attr) == napi_ok) stat_of(env, attr, &e->attr);
  if (get_double(env, obj, "ino", &d)) e->ino = (fuse_ino_t)d;
  e->attr.st_ino = e->ino;
  e->generation = 1;
  if (get_double(env, obj, "attrTimeout", &d)) e->attr_timeout = d;
  if (get_double(env, obj, "entryTimeout", &d)) e->entry_timeout = d;
}

/** An open object {fh, readOnly, directIo, keepCache} as fuse_file_info; a read-only handle skips FLUSH. */
static void open_of(napi_env env, napi_value obj, struct fuse_file_info *fi) {
  double d;
  memset(fi, 0, sizeof *fi);
  if (get_double(env, obj, "fh", &d)) fi->fh = (uint64_t)d;
  if (get_bool(env, obj, "readOnly")) {
    fi->fh |= FH_READ_ONLY;
    fi->noflush = 1;
  }
  fi->direct_io = get_bool(env, obj, "directIo");
  fi->keep_cache = get_bool(env, obj, "keepCache");
}

static napi_value reply_status(napi_env env, int res) {
  napi_value v;
  napi_create_int32(env, res, &v);
  return v;
}

#define REPLY_ARGS(n)                                                                                                  \
  size_t argc = n;                                                                                                     \
  napi_value argv[n];                                                                                                  \
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));                                                         \
  struct request *r = take(env, argv[0]);                                                                              \
  if (!r) return reply_status(env, -EALREADY);

static napi_value js_reply_err(napi_env env, napi_callback_info info) {
  REPLY_ARGS(2)
  int32_t err = EIO;
  napi_get_value_int32(env, argv[1], &err);
  return reply_status(env, fuse_reply_err(r->req, err));
}

static napi_value js_reply_entry(napi_env env, napi_callback_info info) {
  REPLY_ARGS(2)
  struct fuse_entry_param e;
  entry_of(env, argv[1], &e);
  return reply_status(env, fuse_reply_entry(r->req, &e));
}

static napi_value js_reply_attr(napi_env env, napi_callback_info info) {
  REPLY_ARGS(3)
  struct stat st;
  stat_of(env, argv[1], &st);
  double timeout = 0;
  napi_get_value_double(env, argv[2], &timeout);
  return reply_status(env, fuse_reply_attr(r->req, &st, timeout));
}

static napi_value js_reply_open(napi_env env, napi_callback_info info) {
  REPLY_ARGS(2)
  struct fuse_file_info fi;
  open_of(env, argv[1], &fi);
  return reply_status(env, fuse_reply_open(r->req, &fi));
}

static napi_value js_reply_create(napi_env env, napi_callback_info info) {
  REPLY_ARGS(3)
  struct fuse_entry_param e;
  struct fuse_file_info fi;
  entry_of(env, argv[1], &e);
  open_of(env, argv[2], &fi);
  return reply_status(env, fuse_reply_create(r->req, &e, &fi));
}

static napi_value js_reply_buf(napi_env env, napi_callback_info info) {
  REPLY_ARGS(2)
  void *data = NULL;
  size_t len = 0;
  if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) {
    fuse_reply_err(r->req, EIO);
    return reply_status(env, -EINVAL);
  }
  return reply_status(env, fuse_reply_buf(r->req, data, len));
}

static napi_value js_reply_write(napi_env env, napi_callback_info info) {
  REPLY_ARGS(2)
  double count = 0;
  napi_get_value_double(env, argv[1], &count);
  return reply_status(env, fuse_reply_write(r->req, (size_t)count));
}

/**
 * replyDirents(req, entries: [{name, off, ino, mode, entry?}], size): as many entries as fit in
 * `size` bytes; `off` is the offset of the entry after each. For a READDIRPLUS, an entry that
 * carries `entry` is a lookup the kernel counts (as replyEntry's); one without ('.', '..') is
 * listed only. Returns how many of the first entries the kernel got with their lookups: the
 * caller counts lookups for those only (none for a plain READDIR, or an answer that failed).
 */
static napi_value js_reply_dirents(napi_env env, napi_callback_info info) {
  REPLY_ARGS(3)
  double size_d = 0;
  bool plus = r->plus;
  napi_get_value_double(env, argv[2], &size_d);
  size_t size = (size_t)size_d;
  char *buf = calloc(1, size ? size : 1);
  if (!buf) {
    fuse_reply_err(r->req, ENOMEM);
    return reply_status(env, -ENOMEM);
  }
  uint32_t n = 0;
  napi_get_array_length(env, argv[1], &n);
  size_t used = 0;
  uint32_t fitted = 0;
  for (uint32_t i = 0; i < n; i++) {
    napi_value item, v;
    napi_get_element(env, argv[1], i, &item);
    char name[1024];
    size_t nlen = 0;
    napi_get_named_property(env, item, "name", &v);
    if (napi_get_value_string_utf8(env, v, name, sizeof name, &nlen) != napi_ok) continue;
    double off = 0, ino_d = 0, mode_d = 0;
    get_double(env, item, "off", &off);
    get_double(env, item, "ino", &ino_d);
    get_double(env, item, "mode", &mode_d);
    fuse_ino_t ino = (fuse_ino_t)ino_d;
    mode_t mode = (mode_t)mode_d;
    size_t need;
    if (plus) {
      struct fuse_entry_param e;
      napi_value ev;
      napi_valuetype t = napi_undefined;
      if (napi_get_named_property(env, item, "entry", &ev) == napi_ok) napi_typeof(env, ev, &t);
      if (t == napi_object) entry_of(env, ev, &e);
      else {
        // No entry ('.', '..'): the kernel lists the name and instantiates nothing.
        memset(&e, 0, sizeof e);
        e.attr.st_ino = ino;
        e.attr.st_mode = mode;
      }
      need = fuse_add_direntry_plus(r->req, buf + used, size - used, name, &e, (off_t)off);
    } else {
      struct stat st;
      memset(&st, 0, sizeof st);
      st.st_ino = ino;
      st.st_mode = mode;
      need = fuse_add_direntry(r->req, buf + used, size - used, name, &st, (off_t)off);
    }
    if (need > size - used) break;
    used += need;
    fitted++;
  }
  int res = fuse_reply_buf(r->req, buf, used);
  free(buf);
  napi_value out;
  napi_create_uint32(env, res == 0 && plus ? fitted : 0, &out);
  return out;
}

// ---- invalidation, on the session's own thread ----

struct inval {
  struct inval *next;
  fuse_ino_t ino;
  /** An entry of the directory `ino`; NULL: the inode's attributes and data. */
  char *name;
  /** The inode's new content, put in its page cache once the old is dropped (a plaintext copy, zeroed when done). */
  unsigned char *data;
  size_t size;
  /** A retrieval of this many bytes of the inode's cached content (its id), instead of the above. */
  uint64_t retrieval;
  size_t retrieve_size;
  int result;
  napi_ref callback;
};

/**
 * One thread per session, started at its first invalidation, runs them in order. A notification
 * can wait on a kernel lock that a request holds until JS answers it; JS never waits for this
 * thread, so the request is answered and the notification goes on.
 */
struct invalidator {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct inval *head, *tail;
  /** Run, waiting for JS to call their callbacks. */
  struct inval *done;
  bool stop;
  bool exited;
  bool joined;
  uv_async_t wake;
};

static void *invalidator_main(void *arg) {
  struct session *s = arg;
  struct invalidator *inv = s->inv;
  pthread_mutex_lock(&inv->mu);
  for (;;) {
    while (!inv->head && !inv->stop) pthread_cond_wait(&inv->cv, &inv->mu);
    struct inval *iv = inv->head;
    if (!iv) break;
    inv->head = iv->next;
    if (!inv->head) inv->tail = NULL;
    bool stopping = inv->stop;
    pthread_mutex_unlock(&inv->mu);
    // The libfuse session is destroyed only after this thread has ended (see js_unmount).
    if (stopping) iv->result = -ENOTCONN;
    else if (iv->retrieval)
      iv->result =
          fuse_lowlevel_notify_retrieve(s->se, iv->ino, iv->retrieve_size, 0, (void *)(uintptr_t)iv->retrieval);
    else if (iv->name) iv->result = fuse_lowlevel_notify_inval_entry(s->se, iv->ino, iv->name, strlen(iv->name));
    else {
      iv->result = fuse_lowlevel_notify_inval_inode(s->se, iv->ino, 0, 0);
      if (iv->result == 0 && iv->data) {
        struct fuse_bufvec buf = FUSE_BUFVEC_INIT(iv->size);
        buf.buf[0].mem = iv->data;
        iv->result = fuse_lowlevel_notify_store(s->se, iv->ino, 0, &buf, 0);
      }
    }
    pthread_mutex_lock(&inv->mu);
    iv->next = inv->done;
    inv->done = iv;
    uv_async_send(&inv->wake);
  }
  inv->exited = true;
  pthread_mutex_unlock(&inv->mu);
  uv_async_send(&inv->wake);
  return NULL;
}

static void inval_free(struct inval *iv) {
  free(iv->name);
  if (iv->data) {
    explicit_bzero(iv->data, iv->size);
    free(iv->data);
  }
  free(iv);
}

static void on_wake_closed(uv_handle_t *h) {
  struct session *s = h->data;
  struct invalidator *inv = s->inv;
  pthread_mutex_destroy(&inv->mu);
  pthread_cond_destroy(&inv->cv);
  free(inv);
  s->inv = NULL;
  session_unref(s);
}

/** On the JS thread: calls back for the invalidations run, and ends the session after the thread. */
static void on_wake(uv_async_t *h) {
  struct session *s = h->data;
  struct invalidator *inv = s->inv;
  napi_env env = s->env;
  pthread_mutex_lock(&inv->mu);
  struct inval *done = inv->done;
  inv->done = NULL;
  bool exited = inv->exited;
  pthread_mutex_unlock(&inv->mu);
  // Run in the order they were asked for.
  struct inval *ordered = NULL;
  while (done) {
    struct inval *next = done->next;
    done->next = ordered;
    ordered = done;
    done = next;
  }
  napi_handle_scope hs;
  napi_open_handle_scope(env, &hs);
  napi_value resource;
  napi_get_reference_value(env, s->self, &resource);
  while (ordered) {
    struct inval *iv = ordered;
    ordered = iv->next;
    if (iv->retrieval) {
      // Asked: the kernel's answer comes as a request (op_retrieve_reply). Refused: none will.
      if (iv->result != 0) retrieval_done(s, iv->retrieval, iv->result, NULL);
      inval_free(iv);
      continue;
    }
    napi_value fn, recv, arg, result;
    if (napi_get_reference_value(env, iv->callback, &fn) == napi_ok && fn) {
      napi_get_undefined(env, &recv);
      napi_create_int32(env, iv->result, &arg);
      napi_make_callback(env, s->async, resource, fn, 1, &arg, &result);
    }
    napi_delete_reference(env, iv->callback);
    inval_free(iv);
  }
  napi_close_handle_scope(env, hs);
  if (exited && !inv->joined) {
    inv->joined = true;
    pthread_join(inv->thread, NULL);
    if (s->destroy_pending) {
      fuse_session_destroy(s->se);
      s->se = NULL;
      s->destroy_pending = false;
    }
    uv_close((uv_handle_t *)&inv->wake, on_wake_closed);
  }
}

static bool invalidator_start(napi_env env, struct session *s) {
  struct invalidator *inv = calloc(1, sizeof *inv);
  if (!inv) return false;
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  pthread_mutex_init(&inv->mu, NULL);
  pthread_cond_init(&inv->cv, NULL);
  uv_async_init(loop, &inv->wake, on_wake);
  inv->wake.data = s;
  // The daemon's loop does not stay alive for this handle alone.
  uv_unref((uv_handle_t *)&inv->wake);
  s->inv = inv;
  s->refs++;
  if (pthread_create(&inv->thread, NULL, invalidator_main, s) != 0) {
    inv->exited = inv->joined = true;
    uv_close((uv_handle_t *)&inv->wake, on_wake_closed);
    return false;
  }
  return true;
}

/** At unmount: what is queued is not run (its callbacks get -ENOTCONN), and the thread ends. */
static void invalidator_stop(struct session *s) {
  struct invalidator *inv = s->inv;
  pthread_mutex_lock(&inv->mu);
  inv->stop = true;
  pthread_cond_signal(&inv->cv);
  pthread_mutex_unlock(&inv->mu);
}

/** Calls `callback` at once with -ENOTCONN: after an unmount nothing of the mount is cached. */
static void call_not_connected(napi_env env, napi_value callback) {
  napi_value recv, args[2], result;
  napi_get_undefined(env, &recv);
  napi_create_int32(env, -ENOTCONN, &args[0]);
  napi_get_undefined(env, &args[1]);
  napi_call_function(env, recv, callback, 2, args, &result);
}

/** Starts the session's invalidation thread if it has none; false (a JS error thrown) if it cannot. */
static bool invalidator_ready(napi_env env, struct session *s) {
  if (s->inv || invalidator_start(env, s)) return true;
  napi_throw_error(env, "EAGAIN", "the invalidation thread could not be started");
  return false;
}

/** Queues `iv` for the invalidation thread, after those asked before it. */
static void invalidator_push(struct session *s, struct inval *iv) {
  struct invalidator *inv = s->inv;
  pthread_mutex_lock(&inv->mu);
  if (inv->tail) inv->tail->next = iv;
  else inv->head = iv;
  inv->tail = iv;
  pthread_mutex_unlock(&inv->mu);
  // After the unlock: woken while the lock is still held, the thread would wait for it at once.
  pthread_cond_signal(&inv->cv);
}

/**
 * invalidate(session, ino, name | undefined, callback(result), content?): an entry of a
 * directory, or an inode's attributes and data, dropped from the kernel's caches; with `content`
 * (a Buffer, copied now), the inode's page cache then holds it as the file's content. After an
 * unmount nothing of the mount is cached: it calls back at once, as for those still queued then,
 * with -ENOTCONN.
 */
static napi_value js_invalidate(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) {
    napi_throw_type_error(env, NULL, "invalidate(session, ino, name, callback, content?)");
    return NULL;
  }
  struct session *s = session_of(env, argv[0]);
  if (!s) return NULL;
  if (s->closed) {
    call_not_connected(env, argv[3]);
    return undefined(env);
  }
  if (!invalidator_ready(env, s)) return NULL;
  struct inval *iv = calloc(1, sizeof *iv);
  if (!iv) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  double ino = 0;
  napi_get_value_double(env, argv[1], &ino);
  iv->ino = (fuse_ino_t)ino;
  napi_valuetype t;
  napi_typeof(env, argv[2], &t);
  if (t == napi_string) {
    size_t len = 0;
    napi_get_value_string_utf8(env, argv[2], NULL, 0, &len);
    iv->name = malloc(len + 1);
    if (!iv->name) {
      free(iv);
      napi_throw_error(env, "ENOMEM", "out of memory");
      return NULL;
    }
    napi_get_value_string_utf8(env, argv[2], iv->name, len + 1, &len);
  } else if (argc > 4) {
    void *data = NULL;
    size_t size = 0;
    if (napi_get_buffer_info(env, argv[4], &data, &size) == napi_ok && size > 0) {
      iv->data = malloc(size);
      if (!iv->data) {
        free(iv);
        napi_throw_error(env, "ENOMEM", "out of memory");
        return NULL;
      }
      memcpy(iv->data, data, size);
      iv->size = size;
    }
  }
  napi_create_reference(env, argv[3], 1, &iv->callback);
  invalidator_push(s, iv);
  return undefined(env);
}

static void retrieval_done(struct session *s, uint64_t id, int result, const struct fuse_bufvec *content) {
  struct retrieval **at = &s->retrievals;
  while (*at && (*at)->id != id) at = &(*at)->next;
  struct retrieval *rv = *at;
  if (!rv) return;
  *at = rv->next;
  napi_env env = s->env;
  napi_handle_scope hs;
  napi_open_handle_scope(env, &hs);
  napi_value argv[2], fn, resource, out;
  napi_create_int32(env, result, &argv[0]);
  napi_get_undefined(env, &argv[1]);
  if (result == 0 && content) {
    size_t size = fuse_buf_size(content);
    void *data = NULL;
    if (napi_create_buffer(env, size, &data, &argv[1]) == napi_ok && size > 0) {
      struct fuse_bufvec dst = FUSE_BUFVEC_INIT(size);
      dst.buf[0].mem = data;
      fuse_buf_copy(&dst, (struct fuse_bufvec *)content, 0);
    }
  }
  napi_get_reference_value(env, s->self, &resource);
  if (napi_get_reference_value(env, rv->callback, &fn) == napi_ok && fn)
    napi_make_callback(env, s->async, resource, fn, 2, argv, &out);
  napi_delete_reference(env, rv->callback);
  free(rv);
  napi_close_handle_scope(env, hs);
}

/** Ends every retrieval still waited for: after an unmount no answer comes. */
static void retrievals_end(struct session *s) {
  while (s->retrievals) retrieval_done(s, s->retrievals->id, -ENOTCONN, NULL);
}

/**
 * retrieve(session, ino, size, callback(result, content?)): asks the kernel for up to `size`
 * bytes of what its page cache holds of `ino` from offset 0 (through the invalidation thread, in
 * order with the invalidations). The kernel answers with the pages it has, up to the first it does
 * not (and at most its max_write); `result` is negative when it could not be asked (an inode the
 * kernel no longer has, an unmount).
 */
static napi_value js_retrieve(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) {
    napi_throw_type_error(env, NULL, "retrieve(session, ino, size, callback)");
    return NULL;
  }
  struct session *s = session_of(env, argv[0]);
  if (!s) return NULL;
  if (s->closed) {
    call_not_connected(env, argv[3]);
    return undefined(env);
  }
  if (!invalidator_ready(env, s)) return NULL;
  struct inval *iv = calloc(1, sizeof *iv);
  struct retrieval *rv = calloc(1, sizeof *rv);
  if (!iv || !rv) {
    free(iv);
    free(rv);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  double ino = 0, size = 0;
  napi_get_value_double(env, argv[1], &ino);
  napi_get_value_double(env, argv[2], &size);
  rv->id = ++s->next_retrieval;
  napi_create_reference(env, argv[3], 1, &rv->callback);
  rv->next = s->retrievals;
  s->retrievals = rv;
  iv->ino = (fuse_ino_t)ino;
  iv->retrieval = rv->id;
  iv->retrieve_size = (size_t)size;
  invalidator_push(s, iv);
  return undefined(env);
}

/** The session and inode of a grant or revoke (and its handle); inode 0 once the session ended. */
static struct session *grant_args(napi_env env, napi_callback_info info, uint64_t *ino, double *fh) {
  size_t argc = 3;
  napi_value argv[3];
  double d = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct session *s = session_of(env, argv[0]);
  if (!s) return NULL;
  napi_get_value_double(env, argv[1], &d);
  *ino = s->closed || d < 1 ? 0 : (uint64_t)d;
  if (fh) napi_get_value_double(env, argv[2], fh);
  return s;
}

/**
 * grant(session, ino, fh): boolean. From now on the addon answers each read-only open of `ino`
 * (without O_TRUNC) by itself, with the handle `fh` (as replyOpen's: the read-only bit is added),
 * the page cache kept and no FLUSH; and the RELEASE of each handle with that number, JS not woken.
 * For content the kernel holds as it is, until JS revokes it. False if `ino` has a grant already,
 * or after an unmount.
 */
static napi_value js_grant(napi_env env, napi_callback_info info) {
  double fh = 0;
  uint64_t ino;
  struct session *s = grant_args(env, info, &ino, &fh);
  if (!s) return NULL;
  napi_value result;
  CHECK(napi_get_boolean(env, ino && grant_add(&s->grants, ino, (uint64_t)fh), &result));
  return result;
}

/**
 * revoke(session, ino): ends the grant of `ino`; the handles with its number the addon opened less
 * those it released (fewer than none if some it released were JS's), or undefined if it had none.
 */
static napi_value js_revoke(napi_env env, napi_callback_info info) {
  uint64_t ino;
  int64_t held;
  struct session *s = grant_args(env, info, &ino, NULL);
  if (!s) return NULL;
  return ino && grant_remove(&s->grants, ino, &held) ? number(env, (double)held) : undefined(env);
}

/**
 * grantAttributes(session, ino, fh, attr, timeout): boolean. The addon answers GETATTRs of `ino`
 * with `attr` (kept `timeout` seconds), as long as its grant numbered `fh` lasts: for the
 * attributes of the content the grant is for. False if `ino` has no such grant.
 */
static napi_value js_grant_attributes(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  double ino = 0, fh = 0, timeout = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct session *s = session_of(env, argv[0]);
  if (!s) return NULL;
  napi_get_value_double(env, argv[1], &ino);
  napi_get_value_double(env, argv[2], &fh);
  napi_get_value_double(env, argv[4], &timeout);
  // Read before the grant is looked up: reading could run JS, which could change the table.
  struct stat attr;
  stat_of(env, argv[3], &attr);
  struct grant *g = s->closed || ino < 1 ? NULL : grant_find(&s->grants, (uint64_t)ino);
  bool ok = g && g->fh == (uint64_t)fh;
  if (ok) {
    g->attr = attr;
    g->attr_timeout = timeout;
    g->has_attr = true;
  }
  napi_value result;
  CHECK(napi_get_boolean(env, ok, &result));
  return result;
}

/** The caller of a request: {uid, gid, pid}. */
static napi_value js_context(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct request *r = request_of(env, argv[0]);
  if (!r || r->answered) return undefined(env);
  const struct fuse_ctx *ctx = fuse_req_ctx(r->req);
  napi_value obj;
  CHECK(napi_create_object(env, &obj));
  napi_set_named_property(env, obj, "uid", number(env, ctx->uid));
  napi_set_named_property(env, obj, "gid", number(env, ctx->gid));
  napi_set_named_property(env, obj, "pid", number(env, ctx->pid));
  return obj;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"mount", NULL, js_mount, NULL, NULL, NULL, napi_default, NULL},
      {"unmount", NULL, js_unmount, NULL, NULL, NULL, napi_default, NULL},
      {"replyErr", NULL, js_reply_err, NULL, NULL, NULL, napi_default, NULL},
      {"replyEntry", NULL, js_reply_entry, NULL, NULL, NULL, napi_default, NULL},
      {"replyAttr", NULL, js_reply_attr, NULL, NULL, NULL, napi_default, NULL},
      {"replyOpen", NULL, js_reply_open, NULL, NULL, NULL, napi_default, NULL},
      {"replyCreate", NULL, js_reply_create, NULL, NULL, NULL, napi_default, NULL},
      {"replyBuf", NULL, js_reply_buf, NULL, NULL, NULL, napi_default, NULL},
      {"replyWrite", NULL, js_reply_write, NULL, NULL, NULL, napi_default, NULL},
      {"replyDirents", NULL, js_reply_dirents, NULL, NULL, NULL, napi_default, NULL},
      {"invalidate", NULL, js_invalidate, NULL, NULL, NULL, napi_default, NULL},
      {"retrieve", NULL, js_retrieve, NULL, NULL, NULL, napi_default, NULL},
      {"grant", NULL, js_grant, NULL, NULL, NULL, napi_default, NULL},
      {"grantAttributes", NULL, js_grant_attributes, NULL, NULL, NULL, napi_default, NULL},
      {"revoke", NULL, js_revoke, NULL, NULL, NULL, napi_default, NULL},
      {"context", NULL, js_context, NULL, NULL, NULL, napi_default, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}
