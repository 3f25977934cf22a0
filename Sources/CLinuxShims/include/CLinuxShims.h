/// The Linux calls Swift cannot see (variadic, or behind _GNU_SOURCE), as small prefixed
/// wrappers, and the fixed layouts shared by the front process and its workers.
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

/// `mallopt(M_MMAP_THRESHOLD, bytes)`: every allocation of `bytes` or more gets its own
/// mapping, unmapped when freed. glibc otherwise raises the threshold after the first such
/// free, so a burst of multi-megabyte request bodies stays resident in its heaps for good.
/// Returns 1 on success, 0 on failure.
int CLinuxShims_set_mmap_threshold(size_t bytes);

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

// MARK: - Control messages

#define VP_CONTROL_MAGIC 0x56504354u /* "VPCT" */
#define VP_CONTROL_VERSION 2u
#define VP_CONTROL_TEXT_CAPACITY 144

/// What a control message asks or reports.
typedef enum {
    VP_CONTROL_READY = 1, ///< worker → front: engine compiled and warm
    VP_CONTROL_RUN = 2,   ///< front → worker: run `batch` samples of `slot`
    VP_CONTROL_DONE = 3,  ///< worker → front: scores are in `slot`
    VP_CONTROL_ERROR = 4, ///< worker → front: `slot` failed, `text` says why
    VP_CONTROL_STOP = 5,  ///< front → worker: exit after the current batch
} vp_control_kind;

/// One fixed-size message on a worker's SEQPACKET control socket.
typedef struct {
    uint32_t magic;
    uint16_t version;
    uint16_t kind;
    uint32_t slot;
    uint32_t batch;
    uint64_t sequence;
    int64_t pid;
    /// Where the engine's input and output tensors were bound, as offsets into the arena
    /// mapping: the worker's own proof that it runs on the slot in place.
    uint64_t input_offset;
    uint64_t output_offset;
    uint64_t inference_nanoseconds;
    /// CLOCK_MONOTONIC when the worker received the run message and when it replied: with
    /// the front's own clock readings they split a request's time into its hops.
    uint64_t received_at;
    uint64_t replied_at;
    char text[VP_CONTROL_TEXT_CAPACITY];
} vp_control_message;

_Static_assert(sizeof(vp_control_message) == 216, "control messages are a fixed 216 bytes");
_Static_assert(offsetof(vp_control_message, sequence) == 16, "control message layout");
_Static_assert(offsetof(vp_control_message, text) == 72, "control message layout");

// MARK: - Arena

#define VP_ARENA_MAGIC 0x56504152u /* "VPAR" */
#define VP_ARENA_VERSION 1u

/// The first page of the arena: its layout, so a worker checks it maps what the front made.
typedef struct {
    uint32_t magic;
    uint32_t version;
    uint32_t slot_count;
    uint32_t max_batch;
    uint64_t slot_size;
    uint64_t first_slot_offset;
    uint64_t input_floats_per_sample;
    uint64_t output_floats_per_sample;
    uint64_t total_size;
    uint64_t reserved;
} vp_arena_header;

_Static_assert(sizeof(vp_arena_header) == 64, "the arena header is one cache line");

#define VP_SLOT_MAGIC 0x56505354u /* "VPST" */

/// The header at the start of every arena slot; the input tensor follows at `input_offset`
/// and the output at `output_offset` (both from the slot's start).
typedef struct {
    uint32_t magic;
    uint32_t batch;
    uint64_t sequence;
    uint64_t input_offset;
    uint64_t output_offset;
    uint64_t inference_nanoseconds;
    uint64_t reserved[3];
} vp_slot_header;

_Static_assert(sizeof(vp_slot_header) == 64, "slot headers are one cache line");

#ifdef __cplusplus
}
#endif

#endif
