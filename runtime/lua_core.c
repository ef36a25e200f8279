/* smg.core: the C half of the binding's basics — logging, clocks, timers, signals,
 * randomness and hashing, our own stdio — and the registration of the http and proc
 * modules. Handle-owning userdata keep their uv handle in malloc'd memory because uv_close
 * completes after Lua may already have collected the userdata. */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "log.h"
#include "lua_vm.h"
#include "stdio_pipe.h"

int smg_lua_set_exit_code(lua_State *L, int code);

/* ---- logging and clocks ---------------------------------------------------------------- */

static int l_log(lua_State *L) {
  int level = (int)luaL_checkinteger(L, 1);
  if (level < smg_log_get_level()) return 0;
  size_t len;
  const char *msg = luaL_checklstring(L, 2, &len);
  smg_log(level, "%.*s", (int)len, msg);
  return 0;
}

static int l_log_level(lua_State *L) {
  if (lua_gettop(L) >= 1) {
    int lvl = smg_log_level_from_name(luaL_checkstring(L, 1));
    luaL_argcheck(L, lvl >= 0, 1, "unknown log level");
    smg_log_set_level(lvl);
  }
  lua_pushinteger(L, smg_log_get_level());
  return 1;
}

static int l_now(lua_State *L) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  lua_pushnumber(L, (double)tv.tv_sec + (double)tv.tv_usec / 1e6);
  return 1;
}

static int l_hrtime(lua_State *L) {
  lua_pushnumber(L, (double)uv_hrtime() / 1e9);
  return 1;
}

/* ---- timers ------------------------------------------------------------------------------ */

typedef struct {
  uv_timer_t h;
  smg_loop_t *loop;
  int cb_ref, arg_ref, self_ref;
} ltimer_t;

typedef struct {
  ltimer_t *t;
} ltimer_ud;

static void timer_unanchor(ltimer_t *t) {
  smg_lua_unref(smg_lua_enter(t->loop), &t->self_ref);
}

static void on_timer(uv_timer_t *h) {
  ltimer_t *t = h->data;
  lua_State *L = smg_lua_enter(t->loop);
  if (!L) return;
  int cb = t->cb_ref;
  int self = t->self_ref;
  /* A one-shot timer is no longer anchored once it fired; keep the userdata on the stack
   * so it survives the callback. */
  if (uv_timer_get_repeat(h) == 0) {
    smg_lua_push_ref(L, self);
    timer_unanchor(t);
  } else {
    lua_pushnil(L);
  }
  smg_lua_push_ref(L, cb);
  int nargs = 0;
  if (t->arg_ref != LUA_NOREF) {
    smg_lua_push_ref(L, t->arg_ref);
    nargs = 1;
  }
  smg_lua_pcall(L, nargs, 0, "timer callback");
  lua_pop(L, 1);
}

static ltimer_t *check_timer(lua_State *L) {
  ltimer_ud *u = luaL_checkudata(L, 1, "smg.timer");
  luaL_argcheck(L, u->t != NULL, 1, "timer is closed");
  return u->t;
}

static int timer_stop(lua_State *L) {
  ltimer_t *t = check_timer(L);
  uv_timer_stop(&t->h);
  timer_unanchor(t);
  return 0;
}

static int timer_close(lua_State *L) {
  ltimer_ud *u = luaL_checkudata(L, 1, "smg.timer");
  ltimer_t *t = u->t;
  if (!t) return 0;
  u->t = NULL;
  uv_timer_stop(&t->h);
  timer_unanchor(t);
  smg_lua_unref(L, &t->cb_ref);
  smg_lua_unref(L, &t->arg_ref);
  uv_close((uv_handle_t *)&t->h, smg_free_on_close);
  return 0;
}

/* timer(ms, repeat_ms, fn[, arg]): fn(arg) runs when it fires. */
static int l_timer(lua_State *L) {
  double ms = luaL_checknumber(L, 1);
  double repeat = luaL_optnumber(L, 2, 0);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  luaL_argcheck(L, ms >= 0 && repeat >= 0, 1, "negative delay");
  ltimer_ud *u = lua_newuserdata(L, sizeof(*u));
  u->t = calloc(1, sizeof(ltimer_t));
  if (!u->t) return luaL_error(L, "out of memory");
  luaL_getmetatable(L, "smg.timer");
  lua_setmetatable(L, -2);
  ltimer_t *t = u->t;
  t->loop = smg_lua_loop(L);
  uv_timer_init(&smg_lua_loop(L)->uv, &t->h);
  t->h.data = t;
  t->cb_ref = smg_lua_ref(L, 3);
  t->arg_ref = lua_isnoneornil(L, 4) ? LUA_NOREF : smg_lua_ref(L, 4);
  t->self_ref = smg_lua_ref(L, -1);
  /* The loop's clock is cached per iteration; Lua may have run for a while since. */
  uv_update_time(&smg_lua_loop(L)->uv);
  uv_timer_start(&t->h, on_timer, (uint64_t)ms, (uint64_t)repeat);
  return 1;
}

/* ---- immediates ---------------------------------------------------------------------- */

static void on_immediate(uv_check_t *h) {
  smg_loop_t *loop = h->data;
  uv_check_stop(&loop->immediate);
  uv_idle_stop(&loop->immediate_idle);
  lua_State *L = smg_lua_enter(loop);
  if (!L || loop->immediate_ref == LUA_NOREF) return;
  smg_lua_push_ref(L, loop->immediate_ref);
  smg_lua_pcall(L, 0, 0, "immediate handler");
}

static void on_immediate_idle(uv_idle_t *h) {
  (void)h; /* only here so that the poll does not block while an immediate is pending */
}

/* immediate_handler(fn): the function the check phase calls once per armed iteration. */
static int l_immediate_handler(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  smg_loop_t *loop = smg_lua_loop(L);
  smg_lua_unref(L, &loop->immediate_ref);
  loop->immediate_ref = smg_lua_ref(L, 1);
  return 0;
}

/* arm_immediate(): run the handler after this iteration's poll for I/O. */
static int l_arm_immediate(lua_State *L) {
  smg_loop_t *loop = smg_lua_loop(L);
  if (!loop->immediate_inited) {
    uv_check_init(&loop->uv, &loop->immediate);
    uv_idle_init(&loop->uv, &loop->immediate_idle);
    loop->immediate.data = loop->immediate_idle.data = loop;
    loop->immediate_inited = 1;
  }
  if (uv_is_closing((uv_handle_t *)&loop->immediate)) return 0;
  uv_check_start(&loop->immediate, on_immediate);
  uv_idle_start(&loop->immediate_idle, on_immediate_idle);
  return 0;
}

/* ---- signals ----------------------------------------------------------------------------- */

typedef struct {
  uv_signal_t h;
  smg_loop_t *loop;
  int cb_ref, self_ref;
} lsignal_t;

static void on_signal(uv_signal_t *h, int signum) {
  lsignal_t *s = h->data;
  lua_State *L = smg_lua_enter(s->loop);
  if (!L) return;
  smg_lua_push_ref(L, s->cb_ref);
  lua_pushinteger(L, signum);
  smg_lua_pcall(L, 1, 0, "signal handler");
}

static int signal_close(lua_State *L) {
  lsignal_t **u = luaL_checkudata(L, 1, "smg.signal");
  lsignal_t *s = *u;
  if (!s) return 0;
  *u = NULL;
  smg_lua_unref(L, &s->cb_ref);
  smg_lua_unref(L, &s->self_ref);
  uv_close((uv_handle_t *)&s->h, smg_free_on_close);
  return 0;
}

static int l_signal(lua_State *L) {
  static const struct {
    const char *name;
    int num;
  } sigs[] = {{"SIGINT", SIGINT},
              {"SIGTERM", SIGTERM},
              {"SIGHUP", SIGHUP},
              {"SIGUSR1", SIGUSR1},
              {"SIGUSR2", SIGUSR2}};
  const char *name = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  int num = 0;
  for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
    if (strcmp(sigs[i].name, name) == 0) num = sigs[i].num;
  luaL_argcheck(L, num != 0, 1, "unsupported signal");
  lsignal_t **u = lua_newuserdata(L, sizeof(*u));
  *u = calloc(1, sizeof(lsignal_t));
  if (!*u) return luaL_error(L, "out of memory");
  luaL_getmetatable(L, "smg.signal");
  lua_setmetatable(L, -2);
  lsignal_t *s = *u;
  s->loop = smg_lua_loop(L);
  uv_signal_init(&smg_lua_loop(L)->uv, &s->h);
  s->h.data = s;
  s->cb_ref = smg_lua_ref(L, 2);
  s->self_ref = smg_lua_ref(L, -1);
  uv_signal_start(&s->h, on_signal, num);
  /* A signal watcher alone must not keep the process alive. */
  uv_unref((uv_handle_t *)&s->h);
  return 1;
}

static int l_ignore_sigpipe(lua_State *L) {
  signal(SIGPIPE, SIG_IGN);
  return 0;
}

/* ---- randomness and hashing -------------------------------------------------------------- */

static int l_random_bytes(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n > 0 && n <= 4096, 1, "1..4096 bytes");
  unsigned char buf[4096];
  if (RAND_bytes(buf, (int)n) != 1) return luaL_error(L, "RAND_bytes failed");
  lua_pushlstring(L, (const char *)buf, (size_t)n);
  return 1;
}

static int l_hex(lua_State *L) {
  size_t len;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
  static const char digits[] = "0123456789abcdef";
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < len; i++) {
    luaL_addchar(&b, digits[s[i] >> 4]);
    luaL_addchar(&b, digits[s[i] & 15]);
  }
  luaL_pushresult(&b);
  return 1;
}

static int l_sha256(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (!EVP_Digest(s, len, md, &mdlen, EVP_sha256(), NULL)) return luaL_error(L, "sha256 failed");
  lua_pushlstring(L, (const char *)md, mdlen);
  return 1;
}

/* Constant-time comparison for secrets (API keys). */
static int l_secure_equal(lua_State *L) {
  size_t la, lb;
  const unsigned char *a = (const unsigned char *)luaL_checklstring(L, 1, &la);
  const unsigned char *b = (const unsigned char *)luaL_checklstring(L, 2, &lb);
  unsigned char d = la != lb;
  for (size_t i = 0; i < la && i < lb; i++) d |= a[i] ^ b[i];
  lua_pushboolean(L, d == 0);
  return 1;
}

/* ---- process context ----------------------------------------------------------------------- */

static int l_paths(lua_State *L) {
  smg_loop_t *loop = smg_lua_loop(L);
  lua_pushstring(L, loop->exe_path);
  lua_pushstring(L, loop->root_dir);
  return 2;
}

static int l_getpid(lua_State *L) {
  lua_pushinteger(L, getpid());
  return 1;
}

static int l_stop(lua_State *L) {
  smg_lua_set_exit_code(L, (int)luaL_optinteger(L, 1, 0));
  uv_stop(&smg_lua_loop(L)->uv);
  return 0;
}

static int l_set_exit_code(lua_State *L) {
  smg_lua_set_exit_code(L, (int)luaL_checkinteger(L, 1));
  return 0;
}

static int l_update_time(lua_State *L) {
  uv_loop_t *uv = &smg_lua_loop(L)->uv;
  uv_update_time(uv);
  lua_pushnumber(L, (double)uv_now(uv));
  return 1;
}

/* ---- our stdio --------------------------------------------------------------------------- */

static struct {
  smg_loop_t *loop;
  int line_ref, eof_ref;
} stdio_cb = {NULL, LUA_NOREF, LUA_NOREF};

static void on_stdin_line(const char *line, size_t len, void *data) {
  lua_State *L = smg_lua_enter(stdio_cb.loop);
  if (!L) return;
  smg_lua_push_ref(L, stdio_cb.line_ref);
  lua_pushlstring(L, line, len);
  smg_lua_pcall(L, 1, 0, "stdin line handler");
}

static void on_stdin_eof(void *data) {
  lua_State *L = smg_lua_enter(stdio_cb.loop);
  if (!L) return;
  smg_lua_push_ref(L, stdio_cb.eof_ref);
  smg_lua_pcall(L, 0, 0, "stdin eof handler");
}

static int l_stdio_start(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  size_t max_line = (size_t)luaL_optnumber(L, 3, 64 << 20);
  stdio_cb.loop = smg_lua_loop(L);
  smg_lua_unref(L, &stdio_cb.line_ref);
  smg_lua_unref(L, &stdio_cb.eof_ref);
  stdio_cb.line_ref = smg_lua_ref(L, 1);
  stdio_cb.eof_ref = smg_lua_ref(L, 2);
  int rc = smg_stdio_start(&smg_lua_loop(L)->uv, max_line, on_stdin_line, on_stdin_eof, NULL);
  if (rc < 0) return smg_lua_push_uv_error(L, rc);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_stdio_write(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  int rc = smg_stdio_write(s, len);
  if (rc < 0) return smg_lua_push_uv_error(L, rc);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_stdio_pending(lua_State *L) {
  lua_pushnumber(L, (double)smg_stdio_pending());
  return 1;
}

static int l_stdio_close(lua_State *L) {
  smg_stdio_close();
  if (stdio_cb.loop) {
    smg_lua_unref(L, &stdio_cb.line_ref);
    smg_lua_unref(L, &stdio_cb.eof_ref);
  }
  return 0;
}

int luaopen_smg_core(lua_State *L) {
  static const luaL_Reg timer_methods[] = {
      {"stop", timer_stop}, {"close", timer_close}, {NULL, NULL}};
  smg_lua_new_meta(L, "smg.timer", timer_methods, timer_close);

  static const luaL_Reg signal_methods[] = {{"close", signal_close}, {NULL, NULL}};
  smg_lua_new_meta(L, "smg.signal", signal_methods, signal_close);

  smg_stdio_init(&smg_lua_loop(L)->uv);

  static const luaL_Reg fns[] = {
      {"log", l_log},
      {"log_level", l_log_level},
      {"now", l_now},
      {"hrtime", l_hrtime},
      {"update_time", l_update_time},
      {"timer", l_timer},
      {"immediate_handler", l_immediate_handler},
      {"arm_immediate", l_arm_immediate},
      {"signal", l_signal},
      {"ignore_sigpipe", l_ignore_sigpipe},
      {"random_bytes", l_random_bytes},
      {"hex", l_hex},
      {"sha256", l_sha256},
      {"secure_equal", l_secure_equal},
      {"paths", l_paths},
      {"getpid", l_getpid},
      {"stop", l_stop},
      {"set_exit_code", l_set_exit_code},
      {"stdio_start", l_stdio_start},
      {"stdio_write", l_stdio_write},
      {"stdio_pending", l_stdio_pending},
      {"stdio_close", l_stdio_close},
      {NULL, NULL},
  };
  lua_newtable(L);
  luaL_register(L, NULL, fns);
  lua_pushstring(L, SMG_VERSION);
  lua_setfield(L, -2, "version");
  smg_lua_http_register(L);
  smg_lua_proc_register(L);
  smg_lua_json_register(L);
  smg_lua_fs_register(L);
  smg_lua_crypto_register(L);
  smg_lua_text_register(L);
  smg_lua_redis_register(L);
  smg_lua_redis_tls_register(L);
  smg_lua_resolve_register(L);
  return 1;
}
