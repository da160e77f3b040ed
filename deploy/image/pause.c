/* pause.c - the infra ("pause") container of a pod, built statically into its own
 * image by scripts/image.sh (podman needs one for `podman kube play` and there is
 * no registry to pull Kubernetes' from).  It holds the pod's namespaces, reaps
 * orphaned children, and exits on SIGINT/SIGTERM, as Kubernetes' pause does. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig)
{
    (void)sig;
    _exit(0);
}

static void on_child(int sig)
{
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

int main(void)
{
    struct sigaction stop = { .sa_handler = on_stop }, child = { .sa_handler = on_child,
                                                                   .sa_flags = SA_NOCLDSTOP };
    if (getpid() != 1)
        return 1;   /* only meaningful as a container's PID 1 */
    if (sigaction(SIGINT, &stop, NULL) < 0 || sigaction(SIGTERM, &stop, NULL) < 0 ||
        sigaction(SIGCHLD, &child, NULL) < 0)
        return 1;
    for (;;)
        pause();
}
