/* smg entry point: sets up the loop and the Lua VM and hands argv to the Lua CLI
 * (lua/smg/main.lua), which implements every subcommand, `serve` and `run` included.
 * The loop then runs until nothing is left to do or a subcommand stops it. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "loop.h"
#include "lua_vm.h"
#include "sandbox.h"

int main(int argc, char **argv) {
  /* The upstream launcher runs before anything else exists: it only confines and execs. */
  if (argc > 1 && strcmp(argv[1], "sandbox-exec") == 0) return smg_sandbox_exec(argc, argv);
  signal(SIGPIPE, SIG_IGN); /* a vanished peer is an error return, not a death */
  smg_loop_t loop;
  int rc = smg_loop_init(&loop, argv[0]);
  if (rc < 0) {
    fprintf(stderr, "smg: cannot create event loop: %s\n", uv_strerror(rc));
    return 70;
  }
  if (smg_lua_open(&loop) != 0) {
    fprintf(stderr, "smg: cannot create Lua state\n");
    return 70;
  }
  int code = smg_lua_main(&loop, argc, argv);
  if (code == 0) {
    smg_loop_run(&loop);
    code = smg_lua_exit_code(loop.L);
  }
  smg_lua_close(&loop);
  if (smg_loop_close(&loop) != 0) smg_log_debug("loop closed with handles still open");
  return code;
}
