import NIOCore
import NIOHTTP1
import NIOPosix

@testable import Sluice

#if canImport(Glibc)
import Glibc
#endif

/// An HTTP/1.1 server on 127.0.0.1 that a test scripts: every request is kept, and `script` decides the reply.
/// It can stop (its port then refuses connections) and start again on the same port.
final class ScriptedHTTPServer: Sendable {
    struct Request: Sendable {
        var method: String
        var uri: String
        var headers: [(name: String, value: String)]
        var body: [UInt8]
        /// Which request this is, from 0, in the order their bodies were complete.
        var index: Int

        func header(_ name: String) -> String? {
            self.headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }
    }

    enum Reply: Sendable {
        case status(Int, headers: [(String, String)] = [], body: String = "")
        /// No answer at all: the request hangs until the client gives up and closes the connection.
        case hang
    }

    typealias Script = @Sendable (Request) async -> Reply

    private struct State {
        var requests: [Request] = []
        var channel: (any Channel)?
        var port = 0
    }

    private let state = Locked(State())
    private let script: Script
    /// Signalled after each request is kept.
    let received = EventCounter()

    /// Starts the server on a free port.
    init(_ script: @escaping Script) async throws {
        self.script = script
        try await self.start(port: 0)
    }

    var port: Int { self.state.withLock { $0.port } }
    var url: String { "http://127.0.0.1:\(self.port)/ingest" }
    var requests: [Request] { self.state.withLock { $0.requests } }

    /// The NDJSON lines of every request body received (answered or not), in order.
    var lines: [String] {
        self.requests.flatMap { request in
            String(decoding: request.body, as: UTF8.self).split(separator: "\n").map(String.init)
        }
    }

    /// Listens (again) on `port`, or on a free port for 0.
    func start(port: Int) async throws {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(server: self))
                }
            }
            .bind(host: "127.0.0.1", port: port)
            .get()
        let bound = channel.localAddress?.port ?? port
        self.state.withLock {
            $0.channel = channel
            $0.port = bound
        }
    }

    /// Stops listening: connections to the port are refused until ``start(port:)``. Open connections stay.
    func stop() async throws {
        let channel = self.state.withLock { state -> (any Channel)? in
            defer { state.channel = nil }
            return state.channel
        }
        try await channel?.close()
    }

    fileprivate func keep(method: String, uri: String, headers: HTTPHeaders, body: [UInt8]) -> Request {
        let request = self.state.withLock { state -> Request in
            let request = Request(
                method: method,
                uri: uri,
                headers: headers.map { ($0.name, $0.value) },
                body: body,
                index: state.requests.count
            )
            state.requests.append(request)
            return request
        }
        self.received.signal()
        return request
    }

    fileprivate func reply(to request: Request) async -> Reply {
        await self.script(request)
    }

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let server: ScriptedHTTPServer
        private var head: HTTPRequestHead?
        private var body: [UInt8] = []

        init(server: ScriptedHTTPServer) {
            self.server = server
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch self.unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                self.body = []
            case .body(let buffer):
                self.body.append(contentsOf: buffer.readableBytesView)
            case .end:
                guard let head = self.head else { return }
                let request = self.server.keep(
                    method: "\(head.method)",
                    uri: head.uri,
                    headers: head.headers,
                    body: self.body
                )
                let server = self.server
                let promise = context.eventLoop.makePromise(of: Reply.self)
                promise.completeWithTask { await server.reply(to: request) }
                let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                promise.futureResult.whenSuccess { reply in
                    let (handler, context) = bound.value
                    handler.write(reply, version: head.version, context: context)
                }
            }
        }

        private func write(_ reply: Reply, version: HTTPVersion, context: ChannelHandlerContext) {
            guard case .status(let code, let extra, let text) = reply else { return }
            var headers = HTTPHeaders([("content-length", "\(text.utf8.count)")])
            for (name, value) in extra {
                headers.add(name: name, value: value)
            }
            let head = HTTPResponseHead(
                version: version,
                status: HTTPResponseStatus(statusCode: code),
                headers: headers
            )
            context.write(self.wrapOutboundOut(.head(head)), promise: nil)
            context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
            context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}

/// A port on 127.0.0.1 that refuses connections for as long as this value lives: a socket bound to it, never
/// listening. (A port a stopped server released may be taken at once by another test's server.)
final class RefusingPort: Sendable {
    private let socket: Int32
    let port: Int

    init() throws {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                Glibc.bind(socket, address, length) == 0 && getsockname(socket, address, &length) == 0
            }
        }
        guard socket >= 0, bound else { throw Shell.Failed(command: "bind a refusing port", status: errno) }
        self.socket = socket
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    var url: String { "http://127.0.0.1:\(self.port)/ingest" }

    deinit {
        close(self.socket)
    }
}
