import Foundation
import PerchSSH

/// Local test devices: real OpenSSH `sshd` processes, one per device, each with its own host
/// key, authorized key, home (`PERCH_HOME`) and agent state. As root with `ip netns`, each
/// device lives in its own network namespace `perch-tfX` behind a veth pair with the addresses
/// 10.213.X.1 (host) / 10.213.X.2 (device) that this code creates; otherwise on 127.0.0.1 ports.
/// Everything started is recorded in `DIR/testfleet.state` so `down` stops exactly that.
public enum TestFleet {
    public struct Options {
        public var devices = 1
        public var stateDirectory: String
        /// The `perch-agent` binary to put on each device (nil: devices start without an agent).
        public var agentBinary: String?
        /// nil: namespaces when running as root with `ip netns`, else loopback.
        public var useNamespaces: Bool?
        public var sshd = "/usr/sbin/sshd"
        /// Emulated devices: their ISA, profile, and the command that runs their agent (e.g.
        /// `["/usr/bin/qemu-aarch64-static", "-cpu", "max"]`). Such a device gets a launcher script
        /// `home/bin/perch-agent-launcher` and `PERCH_AGENT_LAUNCHER` pointing at it, which is how
        /// `perch deploy` and `perch rollout` run that device's agent; nil: every device is of this
        /// machine's ISA.
        public var emulation: Emulation?
        /// How many devices are emulated: the last N of the fleet (a mixed fleet), nil: all of them.
        /// Only with `emulation`.
        public var emulatedCount: Int?

        public struct Emulation {
            public var isa: String
            public var profile: String
            public var launcher: [String]
            /// The agent for emulated devices (nil: `Options.agentBinary`, as for the others).
            public var agentBinary: String?
            public init(isa: String, profile: String, launcher: [String], agentBinary: String? = nil) {
                self.isa = isa
                self.profile = profile
                self.launcher = launcher
                self.agentBinary = agentBinary
            }
        }

        /// Whether device `i` (1-based) is emulated: the last `emulatedCount` of `devices`.
        public func isEmulated(_ i: Int) -> Bool {
            guard emulation != nil else { return false }
            return i > devices - min(devices, emulatedCount ?? devices)
        }

        public init(stateDirectory: String) { self.stateDirectory = stateDirectory }
    }

    public static let statePrefix = "10.213."

    /// Starts the fleet; writes `fleet.yaml`, `known_hosts` and `id_ed25519` under the state directory.
    public static func up(_ o: Options) throws -> [FleetDevice] {
        let fm = FileManager.default
        let dir = absolute(o.stateDirectory)
        guard fm.isExecutableFile(atPath: o.sshd) else {
            throw FleetError.system("OpenSSH sshd is not installed (no \(o.sshd))", hint: "install it: apt-get install openssh-server")
        }
        guard (1...50).contains(o.devices) else { throw FleetError.badInput("--devices must be 1…50", hint: "pick a smaller fleet") }
        if let n = o.emulatedCount {
            guard o.emulation != nil else { throw FleetError.badInput("--emulated needs --emulate ISA", hint: "add e.g. --emulate aarch64") }
            guard (0...o.devices).contains(n) else {
                throw FleetError.badInput("--emulated \(n) is not between 0 and --devices \(o.devices)", hint: "emulate at most every device")
            }
        }
        let stateFile = dir + "/testfleet.state"
        if let old = try? String(contentsOfFile: stateFile, encoding: .utf8), !old.isEmpty {
            throw FleetError.badInput("a test fleet is already up in \(dir)", hint: "stop it with 'perch testfleet down --state \(o.stateDirectory)'")
        }
        try fm.createDirectory(atPath: dir + "/devices", withIntermediateDirectories: true)
        let state = StateLog(path: stateFile)
        var ok = false
        defer { if !ok { _ = try? down(stateDirectory: dir) } }

        let root = getuid() == 0
        let namespaces = o.useNamespaces ?? (root && run(["ip", "netns", "list"]).status == 0)
        if root { try? fm.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755]) }
        let clientKey = dir + "/id_ed25519"
        if !fm.fileExists(atPath: clientKey) {
            try check(run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "perch-testfleet-client", "-f", clientKey]), "ssh-keygen")
        }
        let clientPub = try String(contentsOfFile: clientKey + ".pub", encoding: .utf8)
        let user = ProcessInfo.processInfo.environment["USER"].flatMap { $0.isEmpty ? nil : $0 } ?? (root ? "root" : "perch")
        var devices: [FleetDevice] = []
        var knownHosts = ""
        var usedSubnets = Set<Int>()
        for i in 1...o.devices {
            let name = "dev\(i)"
            let dev = dir + "/devices/" + name
            try? fm.removeItem(atPath: dev)
            try fm.createDirectory(atPath: dev + "/home/bin", withIntermediateDirectories: true)
            try fm.createDirectory(atPath: dev + "/home/state", withIntermediateDirectories: true)
            try check(run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "perch-testfleet-" + name, "-f", dev + "/ssh_host_ed25519_key"]), "ssh-keygen")
            try clientPub.write(toFile: dev + "/authorized_keys", atomically: true, encoding: .utf8)
            let emulation = o.isEmulated(i) ? o.emulation : nil
            if let agent = emulation?.agentBinary ?? o.agentBinary {
                try fm.copyItem(atPath: agent, toPath: dev + "/home/bin/perch-agent")
                try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dev + "/home/bin/perch-agent")
            }
            var launcherEnv = ""
            if let emu = emulation {
                let launcher = dev + "/home/bin/perch-agent-launcher"
                let script = "#!/bin/sh\n# Runs this emulated " + emu.isa + " device's agent (perch testfleet --emulate).\nexec "
                    + emu.launcher.map(shellQuote).joined(separator: " ") + " \"$@\"\n"
                try script.write(toFile: launcher, atomically: true, encoding: .utf8)
                try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: launcher)
                launcherEnv = " PERCH_AGENT_LAUNCHER=" + launcher
            }
            var host = "127.0.0.1"
            var port = 22
            var prefix: [String] = []
            if namespaces {
                // Creating the namespace claims the subnet; another fleet starting at the same time
                // may claim the same one first ("File exists"), then take the next.
                var x = 0
                for attempt in 1...20 {
                    x = try freeSubnet(excluding: usedSubnets)
                    usedSubnets.insert(x)
                    let r = run(["ip", "netns", "add", "perch-tf\(x)"])
                    if r.status == 0 { break }
                    if attempt == 20 || !r.output.contains("File exists") { try check(r, "ip netns add") }
                }
                let ns = "perch-tf\(x)", vh = "perch\(x)h", vd = "perch\(x)d"
                state.record("netns", ns)
                try check(run(["ip", "link", "add", vh, "type", "veth", "peer", "name", vd]), "ip link add")
                state.record("veth", vh)
                try check(run(["ip", "link", "set", vd, "netns", ns]), "ip link set netns")
                try check(run(["ip", "addr", "add", statePrefix + "\(x).1/30", "dev", vh]), "ip addr add")
                try check(run(["ip", "link", "set", vh, "up"]), "ip link set up")
                for cmd in [["ip", "addr", "add", statePrefix + "\(x).2/30", "dev", vd], ["ip", "link", "set", vd, "up"], ["ip", "link", "set", "lo", "up"]] {
                    try check(run(["ip", "netns", "exec", ns] + cmd), cmd.joined(separator: " "))
                }
                host = statePrefix + "\(x).2"
                prefix = ["ip", "netns", "exec", ns]
            } else {
                port = try freeLoopbackPort()
            }
            let config = """
                # perch testfleet device \(name)
                Port \(port)
                ListenAddress \(host)
                HostKey \(dev)/ssh_host_ed25519_key
                AuthorizedKeysFile \(dev)/authorized_keys
                PidFile \(dev)/sshd.pid
                PasswordAuthentication no
                KbdInteractiveAuthentication no
                UsePAM no
                StrictModes no
                PermitRootLogin prohibit-password
                MaxStartups 50
                Subsystem sftp internal-sftp
                SetEnv PERCH_HOME=\(dev)/home PERCH_AGENT_STATE=\(dev)/home/state PATH=\(dev)/home/bin:/usr/local/bin:/usr/bin:/bin\(launcherEnv)

                """
            try config.write(toFile: dev + "/sshd_config", atomically: true, encoding: .utf8)
            try? fm.removeItem(atPath: dev + "/sshd.pid")
            // sshd daemonizes and writes its PID file; the listener is the process we record.
            try check(run(prefix + [o.sshd, "-f", dev + "/sshd_config", "-E", dev + "/sshd.log"]), "sshd (see \(dev)/sshd.log)")
            let pid = try waitForPID(dev + "/sshd.pid", log: dev + "/sshd.log")
            state.record("pid", String(pid))
            try waitForPort(host, port, prefix: prefix)
            let hostKey = try String(contentsOfFile: dev + "/ssh_host_ed25519_key.pub", encoding: .utf8)
                .split(separator: " ").prefix(2).joined(separator: " ")
            knownHosts += (port == 22 ? host : "[\(host)]:\(port)") + " " + hostKey + "\n"
            devices.append(FleetDevice(name: name, host: host, port: port, user: user, isa: emulation?.isa ?? hostISA,
                                       profile: emulation?.profile ?? "host",
                                       identity: clientKey, knownHosts: dir + "/known_hosts"))
        }
        try knownHosts.write(toFile: dir + "/known_hosts", atomically: true, encoding: .utf8)
        try Inventory(devices: devices).yaml.write(toFile: dir + "/fleet.yaml", atomically: true, encoding: .utf8)
        ok = true
        return devices
    }

    /// Stops what `up` recorded in `DIR/testfleet.state`: the sshd listeners it started (and their
    /// session processes), then the namespaces and veth links it made. Returns what was stopped.
    @discardableResult
    public static func down(stateDirectory: String) throws -> (pids: [Int32], namespaces: [String]) {
        let dir = absolute(stateDirectory)
        let stateFile = dir + "/testfleet.state"
        guard let text = try? String(contentsOfFile: stateFile, encoding: .utf8) else { return ([], []) }
        var pids: [Int32] = [], namespaces: [String] = [], veths: [String] = []
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            switch parts[0] {
            case "pid": if let p = Int32(parts[1]) { pids.append(p) }
            case "netns": namespaces.append(parts[1])
            case "veth": veths.append(parts[1])
            default: break
            }
        }
        var stopped: [Int32] = []
        for pid in pids where isSSHD(pid) {
            let children = childProcesses(of: pid).filter(isSSHD)
            kill(pid, SIGTERM)
            for c in children { kill(c, SIGTERM) }
            stopped.append(pid)
            for _ in 0..<40 where isSSHD(pid) { usleep(50_000) }
            if isSSHD(pid) { kill(pid, SIGKILL) }
        }
        for v in veths { _ = run(["ip", "link", "del", v]) }
        for ns in namespaces { _ = run(["ip", "netns", "del", ns]) }
        try? FileManager.default.removeItem(atPath: stateFile)
        return (stopped, namespaces)
    }

    /// The sshd session processes serving connections to a device (children of its listener);
    /// tests kill them to cut a connection.
    public static func sessionProcesses(stateDirectory: String) -> [Int32] {
        let dir = absolute(stateDirectory)
        guard let text = try? String(contentsOfFile: dir + "/testfleet.state", encoding: .utf8) else { return [] }
        var out: [Int32] = []
        for line in text.split(separator: "\n") where line.hasPrefix("pid ") {
            if let p = Int32(line.dropFirst(4)) { out += childProcesses(of: p) }
        }
        return out
    }

    // MARK: helpers

    static var hostISA: String {
        #if arch(arm64)
        return "aarch64"
        #elseif arch(arm)
        return "armv7"
        #else
        return "x86_64"
        #endif
    }

    static func absolute(_ p: String) -> String {
        let e = (p as NSString).expandingTildeInPath
        return e.hasPrefix("/") ? e : FileManager.default.currentDirectoryPath + "/" + e
    }

    final class StateLog {
        let path: String
        init(path: String) { self.path = path }
        func record(_ kind: String, _ value: String) {
            let line = kind + " " + value + "\n"
            if let h = FileHandle(forWritingAtPath: path) {
                h.seekToEndOfFile()
                h.write(Data(line.utf8))
                try? h.close()
            } else {
                FileManager.default.createFile(atPath: path, contents: Data(line.utf8))
            }
        }
    }

    @discardableResult
    static func run(_ args: [String]) -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch { return (127, "\(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static func check(_ r: (status: Int32, output: String), _ what: String) throws {
        guard r.status == 0 else {
            throw FleetError.system("\(what) failed: \(r.output.trimmingCharacters(in: .whitespacesAndNewlines))", hint: "run as root with iproute2 and openssh-server installed, or see the message")
        }
    }

    /// A /30 under 10.213.0.0/16 that no interface uses and no namespace of ours holds.
    static func freeSubnet(excluding used: Set<Int>) throws -> Int {
        let addrs = run(["ip", "-4", "-o", "addr"]).output
        let names = run(["ip", "netns", "list"]).output
        for x in 1...250 where !used.contains(x) {
            if addrs.contains(statePrefix + "\(x).") || names.contains("perch-tf\(x) ") || names.contains("perch-tf\(x)\n") { continue }
            return x
        }
        throw FleetError.system("no free 10.213.X.0/30 subnet for a test device", hint: "stop old fleets with 'perch testfleet down'")
    }

    static func freeLoopbackPort() throws -> Int {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(s) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, len) == 0 && getsockname(s, $0, &len) == 0 }
        }
        guard ok else { throw FleetError.system("cannot find a free port on 127.0.0.1", hint: "check the loopback interface") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    static func waitForPID(_ path: String, log: String) throws -> Int32 {
        for _ in 0..<100 {
            if let t = try? String(contentsOfFile: path, encoding: .utf8), let p = Int32(t.trimmingCharacters(in: .whitespacesAndNewlines)) { return p }
            usleep(50_000)
        }
        let tail = (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n").last.map(String.init) ?? ""
        throw FleetError.system("sshd did not start: \(tail)", hint: "see \(log)")
    }

    static func waitForPort(_ host: String, _ port: Int, prefix: [String]) throws {
        for _ in 0..<100 {
            let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr(host)
            addr.sin_port = UInt16(port).bigEndian
            let r = withUnsafePointer(to: &addr) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            close(s)
            if r == 0 { return }
            usleep(50_000)
        }
        throw FleetError.system("sshd on \(host):\(port) does not accept connections", hint: "see the device's sshd.log")
    }

    static func isSSHD(_ pid: Int32) -> Bool {
        guard let d = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        return String(decoding: d, as: UTF8.self).contains("sshd")
    }

    static func childProcesses(of parent: Int32) -> [Int32] {
        var out: [Int32] = []
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 2, Int32(fields[1]) == parent { out.append(pid) }
        }
        return out
    }
}
