/*
 * cli.h - subcommands (src/cli/) and the tiny blocking HTTP client they use
 * to talk to a running ebb.
 */
#ifndef EBB_CLI_H
#define EBB_CLI_H

#include <stdint.h>

struct ebb_buf;

int ebb_cmd_run(int argc, char **argv);
int ebb_cmd_request(int argc, char **argv);
int ebb_cmd_wait(int argc, char **argv);
int ebb_cmd_validate(int argc, char **argv);
int ebb_cmd_drill(int argc, char **argv);
/* `ebb init` (SPEC §9.1): 0 done, 1 cannot apply, 2 bad flag or value. */
int ebb_cmd_init(int argc, char **argv);
int ebb_cmd_help(int argc, char **argv);
/* ebb started as `pilot-agent` (argv[0]): request, wait, istio-iptables, version. */
int ebb_cmd_pilot_agent(int argc, char **argv);

/* One HTTP/1.1 exchange with host:port over a blocking socket, bounded by
 * timeout_ms.  Sets *status and appends the response body to body.
 * Returns 0 or a negative EBB_E* (connect failure, timeout, bad answer). */
int ebb_http_request(const char *host, uint16_t port, const char *method, const char *path,
                     const char *req_body, uint64_t timeout_ms, int *status, struct ebb_buf *body);

#endif
