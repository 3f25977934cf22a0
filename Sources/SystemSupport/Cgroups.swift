import Foundation

/// Reading this process's cgroup limits, v1 and v2 alike: which hierarchies are mounted where
/// (`/proc/self/mountinfo`), where the process sits in each (`/proc/self/cgroup`), and the
/// limit files from its own group up to the root, since a limit on a parent binds its children.
public enum Cgroups {
    /// `parse` run over this process's mountinfo and cgroup membership, with a reader of
    /// cgroup files; nil when either cannot be read.
    static func current<Limit>(_ parse: (String, String, (String) -> String?) -> Limit?) -> Limit? {
        guard let mounts = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8),
              let memberships = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)
        else { return nil }
        return parse(mounts, memberships) { try? String(contentsOfFile: $0, encoding: .utf8) }
    }

    /// Every limit `limit` finds in the directories from the process's group up to the root of
    /// each hierarchy that carries `controller` (v1) and of the v2 hierarchy.
    static func limits<Limit>(
        controller: String, mountinfo: String, cgroups: String, limit: (_ directory: String, _ isVersion2: Bool) -> Limit?
    ) -> [Limit] {
        var found: [Limit] = []
        for mount in CgroupMount.parse(mountinfo, controller: controller) {
            guard let member = memberPath(of: mount, controller: controller, in: cgroups) else { continue }
            // The process's path is relative to the hierarchy's root; the mount shows the part
            // of it below `mount.root` (all of it on the host, "/" inside a container).
            guard let relative = relativePath(member, below: mount.root) else { continue }
            var components = relative.split(separator: "/").map(String.init)
            while true {
                if let value = limit(([mount.point] + components).joined(separator: "/"), mount.isVersion2) { found.append(value) }
                guard !components.isEmpty else { break }
                components.removeLast()
            }
        }
        return found
    }

    /// The process's path in `mount`'s hierarchy, from `/proc/self/cgroup` lines
    /// "ID:CONTROLLERS:PATH" (v2: "0::PATH").
    static func memberPath(of mount: CgroupMount, controller: String, in cgroups: String) -> String? {
        for line in cgroups.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let controllers = fields[1].split(separator: ",")
            if mount.isVersion2 ? (fields[0] == "0" && controllers.isEmpty) : controllers.contains(Substring(controller)) { return String(fields[2]) }
        }
        return nil
    }

    static func relativePath(_ path: String, below root: String) -> String? {
        if root == "/" { return path }
        if path == root { return "/" }
        guard path.hasPrefix(root + "/") else { return nil }
        return String(path.dropFirst(root.count))
    }

    /// The tightest memory limit on the way up (v2 `memory.max`, v1 `memory.limit_in_bytes`),
    /// in bytes; nil when none is set. v1 writes "no limit" as a number near 2⁶³, which the
    /// caller's min with physical memory absorbs.
    public static func memoryLimitBytes() -> Int? {
        current { memoryLimitBytes(mountinfo: $0, cgroups: $1, read: $2) }
    }

    /// `memoryLimitBytes()` over given texts and a file reader, so that the parsing is testable.
    public static func memoryLimitBytes(mountinfo: String, cgroups: String, read: (String) -> String?) -> Int? {
        limits(controller: "memory", mountinfo: mountinfo, cgroups: cgroups) { directory, isVersion2 in
            read(directory + (isVersion2 ? "/memory.max" : "/memory.limit_in_bytes")).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }.min()
    }
}

/// A cgroup hierarchy, from a `/proc/self/mountinfo` line:
/// "ID PARENT MAJ:MIN ROOT POINT OPTIONS [TAGS…] - FSTYPE SOURCE SUPEROPTIONS".
struct CgroupMount: Equatable {
    var root: String
    var point: String
    var isVersion2: Bool

    /// The v2 hierarchy and the v1 hierarchies that carry `controller`.
    static func parse(_ mountinfo: String, controller: String) -> [CgroupMount] {
        mountinfo.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ").map(String.init)
            guard let dash = fields.firstIndex(of: "-"), dash >= 6, fields.count > dash + 3 else { return nil }
            let type = fields[dash + 1], superOptions = fields[dash + 3].split(separator: ",")
            let root = unescaped(fields[3]), point = unescaped(fields[4])
            switch type {
            case "cgroup2": return CgroupMount(root: root, point: point, isVersion2: true)
            case "cgroup" where superOptions.contains(Substring(controller)): return CgroupMount(root: root, point: point, isVersion2: false)
            default: return nil
            }
        }
    }

    /// mountinfo writes spaces, tabs, newlines and backslashes in paths as octal escapes.
    private static func unescaped(_ field: String) -> String {
        var result = "", rest = Substring(field)
        while let slash = rest.firstIndex(of: "\\") {
            result += rest[..<slash]
            let code = rest[rest.index(after: slash)...].prefix(3)
            if code.count == 3, let value = UInt8(code, radix: 8) {
                result.append(Character(UnicodeScalar(value)))
                rest = rest[rest.index(slash, offsetBy: 4)...]
            } else {
                result.append("\\")
                rest = rest[rest.index(after: slash)...]
            }
        }
        return result + rest
    }
}
