import CompressNIO
import Engine
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Server
import TallyTestSupport
import Testing

/// `GET /t.js`: the tracker from the repository, gzipped when asked for, cacheable, revalidated by ETag.
@Suite("Tracker script")
struct TrackerAssetTests {
    static func source() throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/Server/Resources/t.js"))
    }

    @Test("served plain or gzipped (under 3 KB), with cache headers and an ETag that gives 304")
    func served() async throws {
        let dir = TemporaryDirectory()
        var options = StoreOptions(directory: dir.path)
        options.backgroundFlush = false
        let store = try EventStore(options: options)
        var configuration = ServerConfiguration()
        configuration.port = 0
        let app = TallyServer.application(store: store, keys: StaticKeys(writeKeys: [:]), configuration: configuration)
        let source = try Self.source()
        try await app.test(.router) { client in
            let plain = try await client.execute(uri: "/t.js", method: .get)
            #expect(plain.status == .ok)
            #expect(Data(buffer: plain.body) == source)
            #expect(plain.headers[.contentType]?.hasPrefix("application/javascript") == true)
            #expect(plain.headers[.contentEncoding] == nil)
            #expect(plain.headers[.cacheControl]?.contains("max-age=86400") == true)
            let etag = try #require(plain.headers[.eTag])

            let gzip = try await client.execute(uri: "/t.js", method: .get, headers: [.acceptEncoding: "br;q=1, gzip;q=0.8"])
            #expect(gzip.headers[.contentEncoding] == "gzip")
            #expect(gzip.body.readableBytes < 3 * 1024, "gzipped tracker is \(gzip.body.readableBytes) bytes")
            var compressed = gzip.body
            let unzipped = try compressed.decompress(with: .gzip())
            #expect(Data(buffer: unzipped) == source)
            let refused = try await client.execute(uri: "/t.js", method: .get, headers: [.acceptEncoding: "gzip;q=0"])
            #expect(refused.headers[.contentEncoding] == nil)

            let cached = try await client.execute(uri: "/t.js", method: .get, headers: [.ifNoneMatch: etag])
            #expect(cached.status == .notModified && cached.body.readableBytes == 0)
            let stale = try await client.execute(uri: "/t.js", method: .get, headers: [.ifNoneMatch: "\"other\""])
            #expect(stale.status == .ok)
        }
        try store.close()
    }
}
