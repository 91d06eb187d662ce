import Benchmark
import BenchmarkSupport
import NIOCore
import NIOHTTP1
import NIOPosix
import Sluice
import SluiceHTTP

// http-post's path — batching, mapAsync, async-http-client, the delivery accounting — against a local server that
// answers 204 at once, with the bodies it received counted. The target: at least 100,000 records a second with 8
// requests in flight.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .sluice(maxDuration: .seconds(6), maxIterations: 10)

    let records = 200_000
    let lines = (0..<records).map { "{\"id\":\($0),\"level\":\"info\",\"msg\":\"request served\",\"ms\":\($0 % 977)}" }
    for concurrency in [1, 8] {
        Benchmark("http-post 200k NDJSON records, 500 per request, concurrency \(concurrency)") { benchmark in
            let server = try await InstantServer.start()
            try await HTTPService.with(HTTPService.Settings()) { service in
                benchmark.startMeasurement()
                let report = try await Pipeline.from(lines)
                    .postNDJSON(
                        to: server.url,
                        via: service,
                        options: HTTPPostOptions(concurrency: concurrency, maxRecordsPerRequest: 500)
                    )
                    .run(RunOptions(batch: BatchLimits(maxRecords: 500)))
                benchmark.stopMeasurement()
                precondition(report.result == records, "delivered \(report.result) of \(records)")
            }
            try await server.stop()
        }
    }
}

/// Answers every request with 204 as soon as its body is in.
final class InstantServer: Sendable {
    let channel: any Channel
    let url: String

    private init(channel: any Channel) {
        self.channel = channel
        self.url = "http://127.0.0.1:\(channel.localAddress?.port ?? 0)/ingest"
    }

    static func start() async throws -> InstantServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler())
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return InstantServer(channel: channel)
    }

    func stop() async throws {
        try await self.channel.close()
    }

    private final class Handler: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .end = self.unwrapInboundIn(data) else { return }
            let head = HTTPResponseHead(version: .http1_1, status: .noContent, headers: ["content-length": "0"])
            context.write(self.wrapOutboundOut(.head(head)), promise: nil)
            context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
