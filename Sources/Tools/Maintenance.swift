import AsyncHTTPClient
import Engine
import Foundation
#if canImport(Glibc)
    import Glibc
#endif
import NIOCore
import Server

/// How a command that changes a data directory gets at it: it takes the directory's lock and
/// opens the store itself, or — when `tally serve` holds the lock — it asks that server through
/// its admin API, with the control token the server wrote to `DIR/SERVER`. Each command says
/// which it did.
enum Maintenance {
    case local(EventStore)
    case server(ServerFile)

    /// Opens `data` for `what`, without background threads; or finds the server holding it.
    static func open(_ data: String, _ what: String) throws -> Maintenance {
        guard FileManager.default.fileExists(atPath: data + "/parts") else { throw failure("\(data): no data directory") }
        do {
            return .local(try EventStore(options: .forCommand(data)))
        } catch let error where error.code == .resourceExhausted {
            // A file left by a server that is gone is not one.
            guard let server = ServerFile.read(from: data), kill(server.pid, 0) == 0 else {
                throw failure("\(data): \(error) (\(what) takes the directory's lock, or goes through the admin API of a "
                    + "`tally serve` holding it, which writes \(data)/\(ServerFile.name); this process left none)")
            }
            return .server(server)
        } catch {
            throw failure("\(data): \(error)")
        }
    }

    /// The line saying how the command reached the directory.
    func how(_ data: String) -> String {
        switch self {
        case .local: "(took the lock of \(data))"
        case .server(let s): "(through the admin API of the server holding \(data): pid \(s.pid), \(s.url))"
        }
    }

    /// POSTs `body` (JSON) to `path` of the server; returns the answer's JSON object, or fails
    /// with the server's error message.
    static func post(_ server: ServerFile, _ path: String, _ body: [String: Any], data: String) async throws -> [String: Any] {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { _ = client.shutdown() }
        var request = HTTPClientRequest(url: server.url + path)
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer " + server.token)
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        let response: HTTPClientResponse
        let answer: ByteBuffer
        do {
            // A backup or a merge of a big month takes minutes.
            response = try await client.execute(request, timeout: .hours(6))
            answer = try await response.body.collect(upTo: 16 << 20)
        } catch {
            throw failure("\(data): the server holding it (pid \(server.pid), \(server.url), from \(data)/\(ServerFile.name)) "
                + "did not answer: \(error)")
        }
        let object = (try? JSONSerialization.jsonObject(with: Data(answer.readableBytesView))) as? [String: Any] ?? [:]
        guard response.status == .ok else {
            let message = object["error"] as? String ?? String(buffer: answer)
            throw failure("\(data): the server holding it answered \(response.status.code): \(message)")
        }
        return object
    }
}

extension StoreOptions {
    /// For a command that opens a directory to change it (ingest, merge, backup, rollup rebuild,
    /// drop-partition), without background threads. Nothing expires: retention is the server's
    /// (its properties' settings; the defaults here would drop rollup months a property keeps
    /// longer). Rollup days are counted in each property's time zone, as the server counts them.
    static func forCommand(_ data: String) -> StoreOptions {
        var options = StoreOptions(directory: data)
        options.backgroundFlush = false
        options.retention = nil
        options.rollups = options.rollups.map { var d = $0; d.retentionDays = 1_000_000; return d }
        if FileManager.default.fileExists(atPath: data + "/" + MetadataStore.fileName),
           let metadata = try? MetadataStore(directory: data, createIfMissing: false) {
            for p in (try? metadata.listProperties()) ?? [] {
                if let zone = try? QueryTimeZone(identifier: p.timezone) { options.siteTimeZones.set(p.id, zone) }
            }
            try? metadata.close()
        }
        return options
    }
}
