import CGlibcExtras
import Prometheus
import Sluice

#if canImport(Glibc)
import Glibc
#endif

/// `--metrics-address HOST:PORT`: serves `GET /metrics` in Prometheus' text format while a run lasts — the run's
/// `sluice_stage_*` and `sluice_pool_lag` metrics, through swift-prometheus.
///
/// A small HTTP/1.1 server on a thread of its own (blocking accept and reads: never the cooperative pool), one
/// request per connection. Port 0 picks a free port; ``url`` says which.
final class MetricsEndpoint: Sendable {
    let registry = PrometheusCollectorRegistry()
    let url: String
    private let socket: Int32
    private let thread: ComputePool
    private let serving: Task<Void, Never>

    /// Listens on `address` (`HOST:PORT`, an IPv4 host) and serves from a thread of its own until ``stop()``.
    init(address: String) throws {
        guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]) else {
            throw MetricsEndpointError("--metrics-address must be HOST:PORT, not '\(address)'")
        }
        let host = String(address[..<colon])
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &socketAddress.sin_addr) == 1 else {
            throw MetricsEndpointError("--metrics-address: '\(host)' is not an IPv4 address")
        }
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { throw MetricsEndpointError("cannot open a socket: \(Self.errorText())") }
        var yes: Int32 = 1
        setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let listening = withUnsafeMutablePointer(to: &socketAddress) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                bind(socket, address, length) == 0 && listen(socket, 16) == 0
                    && getsockname(socket, address, &length) == 0
            }
        }
        guard listening else {
            let reason = Self.errorText()
            close(socket)
            throw MetricsEndpointError("cannot listen on \(address): \(reason)")
        }
        self.socket = socket
        self.url = "http://\(host):\(UInt16(bigEndian: socketAddress.sin_port))/metrics"
        self.thread = try ComputePool(threads: 1, name: "sluice-metrics")
        let (thread, registry) = (self.thread, self.registry)
        self.serving = Task { _ = try? await thread.run { Self.serve(socket, registry: registry) } }
    }

    /// The factory that makes the run's metrics visible here.
    var factory: PrometheusMetricsFactory { PrometheusMetricsFactory(registry: self.registry) }

    /// Stops listening, waits for the thread to end, and frees it.
    func stop() async {
        shutdown(self.socket, Int32(SHUT_RDWR))  // wakes the blocked accept
        await self.serving.value
        close(self.socket)
        await self.thread.shutdown()
    }

    private static func serve(_ socket: Int32, registry: PrometheusCollectorRegistry) {
        while true {
            let connection = accept4(socket, nil, nil, Int32(SOCK_CLOEXEC.rawValue))
            if connection < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return  // shut down
            }
            Self.answer(connection, registry: registry)
            close(connection)
        }
    }

    /// Reads one request head (at most 8 KiB, 2 s) and answers it.
    private static func answer(_ connection: Int32, registry: PrometheusCollectorRegistry) {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 2048)
        while request.count < 8192, !request.ends(with: [13, 10, 13, 10]) {
            let count = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            if count <= 0 { return }
            request += buffer[..<count]
        }
        let line = request.split(separator: 13, maxSplits: 1).first.map { String(decoding: $0, as: UTF8.self) } ?? ""
        let parts = line.split(separator: " ")
        let (status, contentType, body): (String, String, [UInt8])
        if parts.count >= 2, parts[0] == "GET", parts[1] == "/metrics" || parts[1].hasPrefix("/metrics?") {
            (status, contentType, body) = (
                "200 OK", "text/plain; version=0.0.4; charset=utf-8", registry.emitToBuffer()
            )
        } else {
            (status, contentType, body) = ("404 Not Found", "text/plain", Array("GET /metrics\n".utf8))
        }
        let head =
            "HTTP/1.1 \(status)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n"
            + "Connection: close\r\n\r\n"
        Self.send(Array(head.utf8) + body, to: connection)
    }

    private static func send(_ bytes: [UInt8], to connection: Int32) {
        var sent = 0
        while sent < bytes.count {
            let count = bytes.withUnsafeBytes {
                Glibc.send(connection, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL))
            }
            if count <= 0 { return }
            sent += count
        }
    }

    private static func errorText() -> String {
        String(cString: strerror(errno))
    }
}

struct MetricsEndpointError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}

extension Array where Element == UInt8 {
    fileprivate func ends(with suffix: [UInt8]) -> Bool {
        self.count >= suffix.count && Array(self[(self.count - suffix.count)...]) == suffix
    }
}
