import Engine
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Server
import TallyTestSupport
import Testing

@Suite("OpenAPI document")
struct OpenAPITests {
    static func documentFile() throws -> [String: Any] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/Server/Resources/openapi.json")
        return try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }

    @Test("every route is documented and every documented route exists")
    func routesMatch() throws {
        let dir = TemporaryDirectory()
        var options = StoreOptions(directory: dir.path)
        options.backgroundFlush = false
        let store = try EventStore(options: options)
        let metadata = try MetadataStore(directory: dir.path)
        let served = Set(TallyServer.routeList(store: store, metadata: metadata).map { route -> String in
            // Hummingbird writes parameters as ${name}; OpenAPI as {name}.
            route.replacingOccurrences(of: "${", with: "{").replacingOccurrences(of: ":", with: "")
        })
        let doc = try Self.documentFile()
        #expect(doc["openapi"] as? String == "3.1.0")
        var documented: Set<String> = []
        for (path, item) in doc["paths"] as! [String: [String: Any]] {
            for method in item.keys { documented.insert("\(method.uppercased()) \(path)") }
        }
        #expect(served.subtracting(documented).isEmpty, "undocumented: \(served.subtracting(documented).sorted())")
        #expect(documented.subtracting(served).isEmpty, "documented but not served: \(documented.subtracting(served).sorted())")
        #expect(served.count > 20)
        try store.close()
    }

    @Test("GET /openapi.json serves the document in the repository")
    func served() async throws {
        let dir = TemporaryDirectory()
        var options = StoreOptions(directory: dir.path)
        options.backgroundFlush = false
        let store = try EventStore(options: options)
        var configuration = ServerConfiguration()
        configuration.port = 0
        let app = TallyServer.application(store: store, keys: StaticKeys(writeKeys: [:]), configuration: configuration)
        try await app.test(.router) { client in
            let r = try await client.execute(uri: "/openapi.json", method: .get)
            #expect(r.status == .ok)
            let served = try JSONSerialization.jsonObject(with: Data(buffer: r.body)) as! [String: Any]
            #expect(NSDictionary(dictionary: served).isEqual(to: try Self.documentFile()))
        }
        try store.close()
    }
}
