import Foundation
import Glibc
import TestSupport
import Testing

/// Where the service listens, and who else could get at it.
@Suite(.serialized) struct LeastPrivilegeTests {
    /// `visionpool serve` with `arguments`, run to its exit (these refuse to start).
    private func serve(_ arguments: [String]) throws -> Run {
        try visionpool(["serve", "--model", "tiny", "--workers", "1"] + arguments, timeout: 60)
    }

    @Test func aSymlinkedSocketPathIsRefused() throws {
        let folder = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let target = folder.appendingPathComponent("elsewhere.sock").path
        let link = folder.appendingPathComponent("visionpool.sock").path
        #expect(symlink(target, link) == 0)
        let run = try serve(["--socket", link])
        #expect(run.status != 0)
        #expect(run.stderr.contains("is a symbolic link"), "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: target), "nothing was created through the link")
    }

    @Test func aFolderOthersMayWriteToIsRefusedUnlessAllowed() throws {
        let folder = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(chmod(folder.path, 0o777) == 0)
        let socket = folder.appendingPathComponent("visionpool.sock").path
        let refused = try serve(["--socket", socket])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("writable by other users") && refused.stderr.contains("--allow-shared-socket-dir"), "\(refused.stderr)")

        let allowed = try ServerHarness(["--model", "tiny", "--allow-shared-socket-dir"], socket: socket)
        defer { allowed.stop() }
        #expect(try allowed.request("GET", "/v2/health/ready").status == 200)
        var status = stat()
        #expect(stat(socket, &status) == 0 && status.st_mode & 0o777 == 0o600, "the socket itself stays private")
    }

    @Test func theDefaultSocketLivesInAPrivateFolder() throws {
        let folder = "/tmp/visionpool-\(getuid())"
        let socket = "\(folder)/visionpool.sock"
        let server = Process()
        server.executableURL = TestPaths.executable
        server.arguments = ["serve", "--model", "tiny", "--workers", "1"]
        server.environment = ProcessInfo.processInfo.environment.merging(["XDG_RUNTIME_DIR": ""]) { $1 }
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer {
            kill(server.processIdentifier, SIGTERM)
            server.waitUntilExit()
        }
        let deadline = Date().addingTimeInterval(30)
        while !FileManager.default.fileExists(atPath: socket), Date() < deadline, server.isRunning { usleep(50_000) }
        var status = stat()
        #expect(lstat(folder, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR)
        #expect(status.st_mode & 0o777 == 0o700 && status.st_uid == getuid())
        #expect(FileManager.default.fileExists(atPath: socket))
    }

    /// Two servers started together on one path: one serves, the other says why it did not.
    @Test func twoServersRacingForOnePathCannotBothWin() throws {
        let folder = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let socket = folder.appendingPathComponent("visionpool.sock").path
        let logs = (0..<2).map { folder.appendingPathComponent("server-\($0).log") }
        let servers = try logs.map { log in
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            let server = Process()
            server.executableURL = TestPaths.executable
            server.arguments = ["serve", "--model", "tiny", "--workers", "1", "--socket", socket]
            server.standardError = try FileHandle(forWritingTo: log)
            return server
        }
        for server in servers { try server.run() }
        defer {
            for server in servers where server.isRunning { kill(server.processIdentifier, SIGTERM) }
            for server in servers { server.waitUntilExit() }
        }
        let deadline = Date().addingTimeInterval(30)
        while servers.allSatisfy(\.isRunning), Date() < deadline { usleep(50_000) }
        let loser = try #require(servers.firstIndex { !$0.isRunning })
        #expect(servers[loser].terminationStatus != 0)
        let complaint = try String(contentsOf: logs[loser], encoding: .utf8)
        #expect(complaint.contains("another visionpool server holds") || complaint.contains("already listening"), "\(complaint)")
        #expect(servers[1 - loser].isRunning)
    }
}
