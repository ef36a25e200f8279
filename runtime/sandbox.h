/* `smg sandbox-exec [options] -- command [args...]`: the launcher stdio upstreams are
 * started through when their config asks for a sandbox. libuv has no hook between fork and
 * exec, so the limits are applied here, in the child, before exec'ing the real server:
 * no_new_privs, resource limits, and optionally a fresh network namespace with no
 * interfaces up (no network at all, loopback included). */
#ifndef SMG_SANDBOX_H
#define SMG_SANDBOX_H

/* Applies the options and execs the command; returns only on error (the exit status). */
int smg_sandbox_exec(int argc, char **argv);

#endif
