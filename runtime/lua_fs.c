/* smg.core fs_watch: file and directory change notifications (uv_fs_event, inotify on
 * Linux) for hot reload. The callback gets the changed file's name; the Lua side debounces,
 * since one save is often several events. open_private: how smg creates the files it
 * writes (logs, profiles, state). lock_file and write_durable: the config store's
 * serialized, crash-safe replacement of the config file (lua/smg/store.lua). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lua_vm.h"

typedef struct {
  uv_fs_event_t h;
  smg_loop_t *loop;
  int cb_ref, self_ref;
} lwatch_t;

static void on_change(uv_fs_event_t *h, const char *filename, int events, int status) {
  lwatch_t *w = h->data;
  lua_State *L = smg_lua_enter(w->loop);
  if (!L) return;
  smg_lua_push_ref(L, w->cb_ref);
  lua_pushstring(L, filename ? filename : "");
  if (status < 0)
    lua_pushstring(L, uv_strerror(status));
  else
    lua_pushstring(L, (events & UV_RENAME) ? "rename" : "change");
  smg_lua_pcall(L, 2, 0, "file watch handler");
}

static int watch_close(lua_State *L) {
  lwatch_t **u = luaL_checkudata(L, 1, "smg.watch");
  lwatch_t *w = *u;
  if (!w) return 0;
  *u = NULL;
  uv_fs_event_stop(&w->h);
  smg_lua_unref(L, &w->cb_ref);
  smg_lua_unref(L, &w->self_ref);
  uv_close((uv_handle_t *)&w->h, smg_free_on_close);
  return 0;
}

/* fs_watch(path, fn(filename, event)) -> handle | nil, err. A watcher does not keep the
 * process alive. */
static int l_fs_watch(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lwatch_t *w = calloc(1, sizeof(*w));
  if (!w) return luaL_error(L, "out of memory");
  uv_loop_t *loop = &smg_lua_loop(L)->uv;
  uv_fs_event_init(loop, &w->h);
  w->h.data = w;
  int rc = uv_fs_event_start(&w->h, on_change, path, 0);
  if (rc < 0) {
    uv_close((uv_handle_t *)&w->h, smg_free_on_close);
    return smg_lua_push_uv_error(L, rc);
  }
  uv_unref((uv_handle_t *)&w->h);
  lwatch_t **u = lua_newuserdata(L, sizeof(*u));
  *u = w;
  luaL_getmetatable(L, "smg.watch");
  lua_setmetatable(L, -2);
  w->loop = smg_lua_loop(L);
  w->cb_ref = smg_lua_ref(L, 2);
  w->self_ref = smg_lua_ref(L, -1);
  return 1;
}

/* fs_list(dir) -> { {name, type}... } | nil, err. Synchronous: for startup and reloads,
 * never for a request path. type is "file", "dir" or "other". */
static int l_fs_list(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  uv_fs_t req;
  int rc = uv_fs_scandir(NULL, &req, path, 0, NULL);
  if (rc < 0) {
    uv_fs_req_cleanup(&req);
    return smg_lua_push_uv_error(L, rc);
  }
  lua_newtable(L);
  uv_dirent_t ent;
  int i = 0;
  while (uv_fs_scandir_next(&req, &ent) != UV_EOF) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, ent.name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, ent.type == UV_DIRENT_FILE  ? "file"
                      : ent.type == UV_DIRENT_DIR ? "dir"
                                                  : "other");
    lua_setfield(L, -2, "type");
    lua_rawseti(L, -2, ++i);
  }
  uv_fs_req_cleanup(&req);
  return 1;
}

/* open_private(path, truncate, append) -> fd, mode_bits | nil, err: opens `path` for writing,
 * creating it 0600 (owner only), never through a symlink (O_NOFOLLOW), and only if it is
 * a regular file (a FIFO or a device would stall or leak). The caller reopens the file
 * through /proc/self/fd/<fd>, which reaches this inode whatever the path points at by then. */
static int l_open_private(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
  if (lua_toboolean(L, 2)) flags |= O_TRUNC;
  if (lua_toboolean(L, 3)) flags |= O_APPEND;
  int fd = open(path, flags, 0600);
  if (fd < 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path,
                    errno == ELOOP   ? "is a symbolic link (refused)"
                    : errno == ENXIO ? "not a regular file (a FIFO or socket)"
                                     : strerror(errno));
    return 2;
  }
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    lua_pushnil(L);
    lua_pushfstring(L, "%s: not a regular file", path);
    return 2;
  }
  lua_pushinteger(L, fd);
  lua_pushinteger(L, (lua_Integer)(st.st_mode & 0777));
  return 2;
}

/* fs_append(fd, data, cb): writes data at the end of fd (opened with append) on libuv's
 * thread pool, so a slow disk never blocks the loop; cb(bytes_written | nil, err). */
typedef struct {
  uv_fs_t req;
  smg_loop_t *loop;
  int cb_ref;
  size_t len;
  char data[];
} lappend_t;

static void on_appended(uv_fs_t *req) {
  lappend_t *w = req->data;
  ssize_t r = req->result;
  uv_fs_req_cleanup(req);
  lua_State *L = smg_lua_enter(w->loop);
  if (L) {
    smg_lua_push_ref(L, w->cb_ref);
    smg_lua_unref(L, &w->cb_ref);
    if (r < 0) {
      lua_pushnil(L);
      lua_pushstring(L, uv_strerror((int)r));
    } else {
      lua_pushinteger(L, (lua_Integer)r);
      lua_pushnil(L);
    }
    smg_lua_pcall(L, 2, 0, "file write callback");
  }
  free(w);
}

static int l_fs_append(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  lappend_t *w = malloc(sizeof(*w) + len);
  if (!w) return luaL_error(L, "out of memory");
  memcpy(w->data, data, len);
  w->len = len;
  w->loop = smg_lua_loop(L);
  w->req.data = w;
  w->cb_ref = smg_lua_ref(L, 3);
  uv_buf_t buf = uv_buf_init(w->data, (unsigned)len);
  int rc = uv_fs_write(&w->loop->uv, &w->req, fd, &buf, 1, -1, on_appended);
  if (rc < 0) {
    smg_lua_unref(L, &w->cb_ref);
    free(w);
    lua_pushnil(L);
    lua_pushstring(L, uv_strerror(rc));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* lock_file(path) -> fd | nil, err: an exclusive flock(2) on `path` (created 0600, never
 * through a symlink), waiting for it. Synchronous: for the CLI's config writes, which
 * must not lose an update to a concurrent writer; close_fd(fd) releases it. */
static int l_lock_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(errno));
    return 2;
  }
  while (flock(fd, LOCK_EX) < 0) {
    if (errno == EINTR) continue;
    int e = errno;
    close(fd);
    lua_pushnil(L);
    lua_pushfstring(L, "%s: cannot lock: %s", path, strerror(e));
    return 2;
  }
  lua_pushinteger(L, fd);
  return 1;
}

/* write_durable(path, text) -> true | nil, err: replaces `path` with `text` so that a
 * reader sees the old file or the new one, never a part, and the new one survives a
 * crash: a temporary beside it (0600, O_EXCL, no symlink), written whole, fsync'd, renamed
 * over `path`, then the directory fsync'd. Synchronous (the CLI). */
static int l_write_durable(lua_State *L) {
  size_t len;
  const char *path = luaL_checkstring(L, 1);
  const char *text = luaL_checklstring(L, 2, &len);
  char tmp[4096];
  unsigned char rnd[4];
  uv_random(NULL, NULL, rnd, sizeof(rnd), 0, NULL);
  int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%d.%02x%02x%02x%02x", path, (int)getpid(), rnd[0],
                   rnd[1], rnd[2], rnd[3]);
  if (n < 0 || (size_t)n >= sizeof(tmp)) return luaL_error(L, "path too long");
  const char *why = NULL;
  int e = 0;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    e = errno;
    why = "create";
    goto fail;
  }
  for (size_t off = 0; off < len;) {
    ssize_t w = write(fd, text + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      e = errno;
      why = "write";
      goto fail;
    }
    off += (size_t)w;
  }
  if (fsync(fd) < 0) {
    e = errno;
    why = "fsync";
    goto fail;
  }
  close(fd);
  fd = -1;
  if (rename(tmp, path) < 0) {
    e = errno;
    why = "rename";
    goto fail;
  }
  /* The rename lives in the directory: sync it too, or a crash can bring the old file back. */
  char dir[4096];
  snprintf(dir, sizeof(dir), "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash == dir)
    slash[1] = '\0';
  else if (slash)
    *slash = '\0';
  else
    snprintf(dir, sizeof(dir), ".");
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd); /* best effort: some filesystems refuse fsync on a directory */
    close(dfd);
  }
  lua_pushboolean(L, 1);
  return 1;
fail:
  if (fd >= 0) close(fd);
  unlink(tmp);
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s failed: %s", path, why, strerror(e));
  return 2;
}

static int l_close_fd(lua_State *L) {
  close((int)luaL_checkinteger(L, 1));
  return 0;
}

void smg_lua_fs_register(lua_State *L) {
  static const luaL_Reg methods[] = {{"close", watch_close}, {NULL, NULL}};
  smg_lua_new_meta(L, "smg.watch", methods, watch_close);
  lua_pushcfunction(L, l_fs_watch);
  lua_setfield(L, -2, "fs_watch");
  lua_pushcfunction(L, l_fs_list);
  lua_setfield(L, -2, "fs_list");
  lua_pushcfunction(L, l_open_private);
  lua_setfield(L, -2, "open_private");
  lua_pushcfunction(L, l_close_fd);
  lua_setfield(L, -2, "close_fd");
  lua_pushcfunction(L, l_fs_append);
  lua_setfield(L, -2, "fs_append");
  lua_pushcfunction(L, l_lock_file);
  lua_setfield(L, -2, "lock_file");
  lua_pushcfunction(L, l_write_durable);
  lua_setfield(L, -2, "write_durable");
}
