/* help.c - `ebb help [CMD]`. */
#include <string.h>

#include "ebb/cli.h"
#include "ebb/core.h"

static const struct {
    const char *name;
    const char *text;
} helps[] = {
    { "run",
      "usage: ebb run [-c ebb.yaml] [--mesh-config F] [--pod-annotations F] [--log-level L]\n"
      "  Runs the sidecar (also plain `ebb`).  Without -c, the built-in default: inbound\n"
      "  0.0.0.0:15006 -> 127.0.0.1:8080, outbound 127.0.0.1:15001 with no routes.\n"
      "  --mesh-config F      Istio MeshConfig (defaultConfig), default ./etc/istio/config/mesh\n"
      "  --pod-annotations F  downward-API annotations file, default ./etc/istio/pod/annotations\n"
      "  --log-level L        error | warn | info | debug\n"
      "  SIGTERM/SIGINT drain inbound and exit per EXIT_ON_ZERO_ACTIVE_CONNECTIONS;\n"
      "  a second SIGINT exits at once.\n" },
    { "request",
      "usage: ebb request [--port N] METHOD PATH [BODY]\n"
      "  Sends one request to the local admin port (default 15000) or another local port and\n"
      "  prints only the body.  Exits 1 on status >= 400 except 404.\n"
      "  e.g. ebb request GET config_dump; ebb request --port 15020 POST /drain\n" },
    { "wait",
      "usage: ebb wait [--url U] [--timeout S] [--period MS]\n"
      "  Blocks until U (default http://127.0.0.1:15021/healthz/ready) answers 200.\n"
      "  Defaults: --timeout 60 seconds, --period 500 ms.  Exits 1 on timeout.\n" },
    { "validate",
      "usage: ebb validate [-c ebb.yaml] [--mesh-config F] [--pod-annotations F]\n"
      "  Loads every configuration source, prints the effective configuration as JSON with\n"
      "  the source of every value, and exits 0; on an error prints it and exits 2.\n" },
    { "drill",
      "usage: ebb drill [--scenario long-request|steady|idle-pool|h2-streams|outbound|all]\n"
      "                 [--proxy ebb|nginx|haproxy|none] [--proxy-cmd CMD] [--mode M] ...\n"
      "  Termination drill (SPEC §8): a built-in app, the proxy under test and a load\n"
      "  generator on loopback; the proxy is terminated as Kubernetes does it and every\n"
      "  request is counted.  `ebb drill --help` lists every flag; see docs/drill.md.\n" },
    { "init",
      "usage: ebb init [istio-iptables flags] [--pod-annotations F] [-n|--dry-run] [--clean]\n"
      "  Writes Istio's REDIRECT-mode nat rules (SPEC §9.1) in this network namespace with\n"
      "  iptables-restore --noflush: inbound TCP to 15006, outbound TCP to 15001, except the\n"
      "  proxy's own traffic.  Idempotent; needs CAP_NET_ADMIN.  See docs/capture.md.\n"
      "  -p, --envoy-port N                       outbound redirect port (15001)\n"
      "  -z, --inbound-capture-port N             inbound redirect port (15006)\n"
      "  -e, --inbound-tunnel-port N              inbound port never redirected (15008)\n"
      "  -u, --proxy-uid LIST                     proxy uids, never redirected (1337)\n"
      "  -g, --proxy-gid LIST                     proxy gids (default: the uids)\n"
      "  -m, --istio-inbound-interception-mode M  REDIRECT (TPROXY is not supported)\n"
      "  -b, --istio-inbound-ports LIST|*         inbound ports to redirect (*)\n"
      "  -d, --istio-local-exclude-ports LIST     not redirected under -b * (15090,15021,15020)\n"
      "  -i, --istio-service-cidr LIST|*          outbound ranges to redirect (*)\n"
      "  -x, --istio-service-exclude-cidr LIST    outbound ranges never redirected\n"
      "  -q, --istio-outbound-ports LIST          outbound ports always redirected\n"
      "  -o, --istio-local-outbound-ports-exclude LIST  outbound ports never redirected\n"
      "  --pod-annotations F   downward-API annotations file (traffic.sidecar.istio.io/...);\n"
      "                        a flag wins over an annotation\n"
      "  --ipv6 auto|on|off    ip6tables rules too (auto: when the kernel has IPv6)\n"
      "  --force-iptables-binary legacy|nft  default: the backend holding rules, else the system's\n"
      "  -n, --dry-run         print the iptables-restore input, change nothing\n"
      "  --clean               remove ebb's chains and the rules jumping to them\n"
      "  Exit: 0 done, 1 cannot apply (no CAP_NET_ADMIN, iptables failed), 2 bad flag or value.\n" },
    { "version", "usage: ebb version\n" },
};

int ebb_cmd_help(int argc, char **argv)
{
    if (argc >= 2) {
        for (size_t i = 0; i < EBB_ARRAY_LEN(helps); i++) {
            if (strcmp(argv[1], helps[i].name) == 0) {
                fputs(helps[i].text, stdout);
                return 0;
            }
        }
        fprintf(stderr, "ebb: no help for \"%s\"\n", argv[1]);
        return 2;
    }
    printf("ebb %s - a service-mesh sidecar that drains without losing requests\n\n"
           "usage: ebb <command> [flags]\n\n"
           "commands:\n"
           "  run        run the sidecar (default)\n"
           "  request    send a request to the local admin or status port\n"
           "  wait       wait until the sidecar is ready\n"
           "  validate   load and print the effective configuration\n"
           "  drill      termination drill\n"
           "  init       write the pod's iptables capture rules (istio-iptables)\n"
           "  version    print the version\n"
           "  help CMD   help for one command\n", EBB_VERSION);
    return 0;
}
