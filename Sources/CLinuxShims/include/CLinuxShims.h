/// The Linux calls Swift cannot see (variadic, or behind _GNU_SOURCE), as small prefixed
/// wrappers. The layouts the front and its workers share are CPoolWire's.
#ifndef C_LINUX_SHIMS_H
#define C_LINUX_SHIMS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/// `memfd_create(name, MFD_CLOEXEC)`: anonymous shared memory no other process can open by name.
int CLinuxShims_memfd_create(const char *name);

/// `socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds)`: message boundaries kept, EOF on peer death.
int CLinuxShims_socketpair_seqpacket(int fds[2]);

/// `prctl(PR_SET_PDEATHSIG, signal)`: this process gets `signal` when its parent thread dies.
int CLinuxShims_set_parent_death_signal(int signal);

/// `pidfd_open(pid, 0)`: a descriptor that polls readable when the process exits.
int CLinuxShims_pidfd_open(pid_t pid);

/// `waitid(P_PIDFD, pidfd, …, WEXITED | WNOHANG | WNOWAIT)`: how the process exited, without
/// reaping it (it stays a zombie, its pid not reusable, until `waitpid`). Sets `*exit_status`
/// (or -1) and `*signal` (or 0); returns 0, or -1 with errno (ECHILD, or EAGAIN while it runs).
int CLinuxShims_pidfd_exit(int pidfd, int *exit_status, int *signal);

/// `eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)`: a counter other threads write to wake a poll loop.
int CLinuxShims_eventfd(void);

/// `sched_setaffinity(pid, …)` to exactly `count` CPUs.
int CLinuxShims_set_affinity(pid_t pid, const int32_t *cpus, size_t count);

/// `sched_setaffinity` of every thread of this process (listed in /proc/self/task) to exactly
/// `count` CPUs: a thread's affinity is its own, and runtimes start threads before `main`.
int CLinuxShims_set_process_affinity(const int32_t *cpus, size_t count);

/// `sched_getaffinity(pid, …)`: writes up to `capacity` CPU numbers, returns how many (or -1).
int CLinuxShims_get_affinity(pid_t pid, int32_t *cpus, size_t capacity);

/// `socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC)` then `connect` to `path`: a connected
/// descriptor, or -1 with errno set (ENAMETOOLONG when `path` does not fit `sun_path`).
int CLinuxShims_connect_unix(const char *path);

/// `getsockopt(fd, SOL_SOCKET, SO_PEERCRED, …)`: the process at the other end of a connected
/// Unix-domain socket (`struct ucred` is behind _GNU_SOURCE). Returns its pid, or -1.
pid_t CLinuxShims_peer_pid(int fd);

/// `mallopt(M_MMAP_THRESHOLD, mmap_bytes)` and `mallopt(M_TRIM_THRESHOLD, trim_bytes)`:
/// every allocation of `mmap_bytes` or more gets its own mapping, unmapped when freed (glibc
/// otherwise raises the threshold after the first such free, so a burst of multi-megabyte
/// request bodies stays resident in its heaps for good), and a heap keeps up to `trim_bytes`
/// free at its top instead of handing every freed page back (fixing the first threshold also
/// fixes this one, at 128 KiB, so each request's decode buffers faulted in afresh).
/// Returns 1 on success, 0 on failure.
int CLinuxShims_set_malloc_thresholds(size_t mmap_bytes, size_t trim_bytes);

/// `posix_spawn` of the program open at `executable` (run through `/proc/self/fd`, so a
/// replaced file does not change what runs) with `argv`/`envp`, `shared_memory` as
/// descriptor 3, `control` as 4 and the program as 5 in the child, its standard output sent
/// to standard error (a worker must never write into the front's output), every other
/// descriptor closed, default signal dispositions, an empty signal mask, and a process group
/// of its own (`POSIX_SPAWN_SETPGROUP`). Returns 0 or an errno value.
int CLinuxShims_spawn_worker(int executable, char *const argv[], char *const envp[], int shared_memory, int control,
                             pid_t *pid);

/// The descriptors a worker finds its arena, control socket and own program on.
enum { CLinuxShims_WORKER_ARENA_FD = 3, CLinuxShims_WORKER_CONTROL_FD = 4, CLinuxShims_WORKER_EXECUTABLE_FD = 5 };

/// `open(path, O_RDONLY | O_CLOEXEC)` (`open` is variadic).
int CLinuxShims_open_executable(const char *path);

/// `signal(SIGINT, SIG_IGN)` and `signal(SIGTERM, SIG_IGN)`: a worker stops on its front's
/// word, not on a signal sent to every process of a group or service. 0, or -1 with errno.
int CLinuxShims_ignore_stop_signals(void);

/// `fcntl(fd, F_SETFL, … | O_NONBLOCK)` (`fcntl` is variadic). 0, or -1 with errno.
int CLinuxShims_set_nonblocking(int fd);

#ifdef __cplusplus
}
#endif

#endif
