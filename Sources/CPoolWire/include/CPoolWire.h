/// The fixed layouts shared by the front process and its workers: the control message on
/// each worker's socket, and the arena's and each slot's header in shared memory. Both sides
/// are built from this one header; the static asserts keep the layouts what the versions say.
#ifndef C_POOL_WIRE_H
#define C_POOL_WIRE_H

#include <stddef.h>
#include <stdint.h>

// MARK: - Control messages

#define VP_CONTROL_MAGIC 0x56504354u /* "VPCT" */
#define VP_CONTROL_VERSION 3u
/// Room for an engine's description (JSON, in `ready`) or an engine's reason for failing.
#define VP_CONTROL_TEXT_CAPACITY 512

/// What a control message asks or reports.
typedef enum {
    VP_CONTROL_READY = 1,        ///< worker → front: engine compiled and warm; `text` is its description as JSON
    VP_CONTROL_RUN = 2,          ///< front → worker: run `batch` samples of `slot`
    VP_CONTROL_DONE = 3,         ///< worker → front: scores are in `slot`
    VP_CONTROL_ERROR = 4,        ///< worker → front: `slot` failed, `text` says why
    VP_CONTROL_STOP = 5,         ///< front → worker: exit after the current batch
    VP_CONTROL_START_FAILED = 6, ///< worker → front: the engine cannot be built, `text` says why; the worker exits
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

_Static_assert(sizeof(vp_control_message) == 584, "control messages are a fixed 584 bytes");
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

#endif
