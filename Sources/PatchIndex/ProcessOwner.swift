import Foundation

/// Which process holds a running slide or run: `host:pid`. A process on this host that no longer exists holds
/// nothing; one on another host cannot be checked from here and counts as gone.
public enum ProcessOwner {
    public static let current = "\(ProcessInfo.processInfo.hostName):\(getpid())"

    /// Whether the process named by `owner` is alive (this host only).
    public static func isAlive(_ owner: String) -> Bool {
        guard let colon = owner.lastIndex(of: ":"), let pid = Int32(owner[owner.index(after: colon)...]) else { return false }
        guard owner[..<colon] == ProcessInfo.processInfo.hostName[...] else { return false }
        if pid == getpid() { return true }
        return kill(pid, 0) == 0 || errno == EPERM
    }
}
