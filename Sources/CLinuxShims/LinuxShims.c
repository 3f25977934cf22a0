#define _GNU_SOURCE
#include "CLinuxShims.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <fcntl.h>
#include <malloc.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int CLinuxShims_memfd_create(const char *name) { return memfd_create(name, MFD_CLOEXEC); }

int CLinuxShims_socketpair_seqpacket(int fds[2]) { return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds); }

int CLinuxShims_set_parent_death_signal(int signal) { return prctl(PR_SET_PDEATHSIG, signal, 0, 0, 0); }

int CLinuxShims_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

int CLinuxShims_pidfd_exit(int pidfd, int *exit_status, int *signal) {
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    if (waitid(P_PIDFD, (id_t)pidfd, &info, WEXITED | WNOHANG | WNOWAIT) != 0) return -1;
    if (info.si_pid == 0) {
        errno = EAGAIN;
        return -1;
    }
    *exit_status = info.si_code == CLD_EXITED ? info.si_status : -1;
    *signal = info.si_code == CLD_EXITED ? 0 : info.si_status;
    return 0;
}

int CLinuxShims_connect_unix(const char *path) {
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(address.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(address.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&address, sizeof(address)) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

pid_t CLinuxShims_peer_pid(int fd) {
    struct ucred credentials;
    socklen_t length = sizeof(credentials);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return -1;
    return credentials.pid;
}

int CLinuxShims_set_malloc_thresholds(size_t mmap_bytes, size_t trim_bytes) {
    return mallopt(M_MMAP_THRESHOLD, (int)mmap_bytes) && mallopt(M_TRIM_THRESHOLD, (int)trim_bytes);
}

int CLinuxShims_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

int CLinuxShims_set_affinity(pid_t pid, const int32_t *cpus, size_t count) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (size_t index = 0; index < count; index++) {
        if (cpus[index] < 0 || cpus[index] >= CPU_SETSIZE) {
            errno = EINVAL;
            return -1;
        }
        CPU_SET(cpus[index], &set);
    }
    return sched_setaffinity(pid, sizeof(set), &set);
}

int CLinuxShims_set_process_affinity(const int32_t *cpus, size_t count) {
    DIR *tasks = opendir("/proc/self/task");
    if (tasks == NULL) return -1;
    int result = 0;
    struct dirent *entry;
    while ((entry = readdir(tasks)) != NULL) {
        if (entry->d_name[0] == '.') continue;
        if (CLinuxShims_set_affinity((pid_t)atoi(entry->d_name), cpus, count) != 0 && errno != ESRCH) result = -1;
    }
    closedir(tasks);
    return result;
}

int CLinuxShims_get_affinity(pid_t pid, int32_t *cpus, size_t capacity) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(pid, sizeof(set), &set) != 0) return -1;
    size_t count = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && count < capacity; cpu++) {
        if (CPU_ISSET(cpu, &set)) cpus[count++] = cpu;
    }
    return (int)count;
}

int CLinuxShims_spawn_worker(int executable, char *const argv[], char *const envp[], int shared_memory, int control,
                             pid_t *pid) {
    // Sources at 3, 4 or 5 would be overwritten by another dup2: move them out of the way first.
    int program = executable >= 6 ? executable : fcntl(executable, F_DUPFD_CLOEXEC, 6);
    int arena = shared_memory >= 6 ? shared_memory : fcntl(shared_memory, F_DUPFD_CLOEXEC, 6);
    int channel = control >= 6 ? control : fcntl(control, F_DUPFD_CLOEXEC, 6);
    int result = (program < 0 || arena < 0 || channel < 0) ? errno : 0;
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    int actions_ready = 0, attributes_ready = 0;
    if (result == 0) result = posix_spawn_file_actions_init(&actions), actions_ready = result == 0;
    if (result == 0) result = posix_spawnattr_init(&attributes), attributes_ready = result == 0;
    // dup2 clears close-on-exec on the copies; everything from 6 up is closed.
    if (result == 0) result = posix_spawn_file_actions_adddup2(&actions, program, CLinuxShims_WORKER_EXECUTABLE_FD);
    if (result == 0) result = posix_spawn_file_actions_adddup2(&actions, arena, CLinuxShims_WORKER_ARENA_FD);
    if (result == 0) result = posix_spawn_file_actions_adddup2(&actions, channel, CLinuxShims_WORKER_CONTROL_FD);
    if (result == 0) result = posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);
    if (result == 0) result = posix_spawn_file_actions_addclosefrom_np(&actions, CLinuxShims_WORKER_EXECUTABLE_FD + 1);
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    if (result == 0) result = posix_spawnattr_setsigdefault(&attributes, &all);
    if (result == 0) result = posix_spawnattr_setsigmask(&attributes, &none);
    // A process group of its own: a terminal's Ctrl-C goes to the front's group only.
    if (result == 0) result = posix_spawnattr_setpgroup(&attributes, 0);
    if (result == 0)
        result = posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);
    // The child's own copy of the program's descriptor: the build that is running, even if
    // its file has been replaced since.
    char path[32];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", CLinuxShims_WORKER_EXECUTABLE_FD);
    if (result == 0) result = posix_spawn(pid, path, &actions, &attributes, argv, envp);
    if (attributes_ready) posix_spawnattr_destroy(&attributes);
    if (actions_ready) posix_spawn_file_actions_destroy(&actions);
    if (program >= 0 && program != executable) close(program);
    if (arena >= 0 && arena != shared_memory) close(arena);
    if (channel >= 0 && channel != control) close(channel);
    return result;
}

int CLinuxShims_ignore_stop_signals(void) {
    if (signal(SIGINT, SIG_IGN) == SIG_ERR) return -1;
    return signal(SIGTERM, SIG_IGN) == SIG_ERR ? -1 : 0;
}

int CLinuxShims_set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

int CLinuxShims_open_executable(const char *path) { return open(path, O_RDONLY | O_CLOEXEC); }
