#include "avps/artifacts/store.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/hash.hpp"

namespace avps::artifacts {
namespace fs = std::filesystem;
using nlohmann::json;

fs::path object_path(const fs::path& project_dir, const std::string& json_sha256) {
  return project_dir / ".avps" / "objects" / json_sha256.substr(0, 2) / (json_sha256.substr(2) + ".json");
}

Result<std::string> store_object(ledger::Ledger& ledger, std::string_view bytes) {
  if (bytes.size() <= k_ledger_object_max_bytes) {
    return ledger.put_object(bytes);
  }
  // A large object (a real render) is a file of its own, durable before the event that names it.
  std::string sha256 = core::sha256_hex(bytes);
  const fs::path path = object_path(ledger.project_dir(), sha256);
  AVPS_TRY(core::create_directories_durable(path.parent_path()));
  Result<void> written = core::write_file_atomic(path, bytes, core::Overwrite::no, core::Durability::durable);
  if (!written) {
    if (written.error().code != ErrorCode::already_exists) {
      return std::move(written).error();
    }
    // Content-addressed: the file there holds these bytes, unless it was damaged.
    AVPS_TRY_ASSIGN(std::string existing, core::read_file(path));
    if (core::sha256_hex(existing) != sha256) {
      return make_error(ErrorCode::corruption, "object " + path.string() + " is damaged (hash mismatch)");
    }
  }
  return sha256;
}

std::string object_subject(const ledger::Ledger& ledger, const std::string& sha256) {
  Result<std::optional<std::string>> held = ledger.object(sha256);
  if (held && *held) {
    return "object " + sha256 + " (.avps/ledger.db)";
  }
  if (sha256.size() == 64 && fs::exists(object_path(ledger.project_dir(), sha256))) {
    return object_path(ledger.project_dir(), sha256).lexically_relative(ledger.project_dir()).generic_string();
  }
  return "object " + sha256;  // gone from both places
}

Result<std::string> read_object(const ledger::Ledger& ledger, const std::string& sha256) {
  if (sha256.size() != 64 || !std::all_of(sha256.begin(), sha256.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
      })) {
    return make_error(ErrorCode::corruption, "the ledger names a malformed object \"" + sha256 + "\"");
  }
  AVPS_TRY_ASSIGN(std::optional<std::string> held, ledger.object(sha256));
  std::string name;
  std::string bytes;
  if (held) {
    name = "object " + sha256 + " (.avps/ledger.db)";
    bytes = std::move(*held);
  } else {
    // Not in the ledger: a large object, or one stored before schema 3, is a file.
    const fs::path file = object_path(ledger.project_dir(), sha256);
    name = "object " + file.lexically_relative(ledger.project_dir()).generic_string();
    Result<std::string> read = core::read_file(file);
    if (!read) {
      if (read.error().code == ErrorCode::not_found) {
        return make_error(ErrorCode::not_found, "object " + sha256 + " is gone (neither in .avps/ledger.db nor at " +
                                                    file.lexically_relative(ledger.project_dir()).generic_string() +
                                                    "); run `avps gate`");
      }
      return std::move(read).error();
    }
    bytes = std::move(read).value();
  }
  if (core::sha256_hex(bytes) != sha256) {
    return make_error(ErrorCode::corruption, name + " no longer matches its hash (changed on disk); run `avps gate`");
  }
  return bytes;
}

ArtifactStore::ArtifactStore(fs::path project_dir, ledger::Ledger& ledger)
    : m_project_dir(std::move(project_dir)), m_ledger(ledger) {}

Result<void> ArtifactStore::write_face(const NewArtifact& artifact, core::Durability durability) const {
  fs::path face = m_project_dir / artifact.name.relative_path();
  AVPS_TRY(core::create_directories_durable(face.parent_path()));
  return core::write_file_atomic(face, artifact.face, core::Overwrite::no, durability);
}

Result<ledger::ArtifactRecord> ArtifactStore::write(const NewArtifact& artifact) {
  AVPS_TRY_ASSIGN(std::vector<ledger::ArtifactRecord> records, write_all({artifact}));
  return std::move(records.front());
}

Result<std::vector<ledger::ArtifactRecord>> ArtifactStore::write_all(const std::vector<NewArtifact>& group) {
  std::vector<ledger::ArtifactRecord> records;
  std::vector<std::string> canonicals;
  std::set<std::string> names;
  for (const NewArtifact& artifact : group) {
    const std::string filename = artifact.name.filename();
    AVPS_TRY_ASSIGN(std::optional<ledger::ArtifactRecord> known, m_ledger.find_artifact(filename));
    if (known) {
      return make_error(ErrorCode::already_exists,
                        "refusing to overwrite artifact " + known->path + " (recorded by ledger event " +
                            std::to_string(known->event_seq) + "); write the next version instead");
    }
    const std::string relative = artifact.name.relative_path();
    if (fs::exists(m_project_dir / relative) || !names.insert(filename).second) {
      return make_error(ErrorCode::already_exists,
                        "refusing to overwrite " + relative + ": the file exists but the ledger does not know it");
    }
    AVPS_TRY_ASSIGN(std::string canonical, core::canonical_json(artifact.content));
    ledger::ArtifactRecord record;
    record.name = filename;
    record.kind = artifact.name.kind;
    record.target = artifact.name.target;
    record.version = artifact.name.version;
    record.path = relative;
    record.face_sha256 = core::sha256_hex(artifact.face);
    record.json_sha256 = core::sha256_hex(canonical);
    record.author = artifact.author;
    record.producer = artifact.producer;
    records.push_back(std::move(record));
    canonicals.push_back(std::move(canonical));
  }
  if (group.empty()) {
    return records;
  }

  // The objects first, deferred: the intents' sync makes them durable with the intents, so an
  // intent never names an object a power cut lost. A kill here leaves objects nothing names, and
  // no write announced.
  for (const std::string& canonical : canonicals) {
    AVPS_TRY(store_object(m_ledger, canonical));
    core::crash_point("store.after_object");
  }
  // Every intent of the group in one transaction, synced: one sync announces them all, before any
  // face appears.
  std::vector<ledger::EventDraft> intents;
  for (size_t i = 0; i < group.size(); ++i) {
    ledger::EventDraft intent{.kind = "artifact.intent",
                              .body = {{"intent", records[i].to_json()}, {"details", group[i].details}}};
    if (group[i].row) {
      // The row the write reports (a model call's tier, model and actual cost among it): recovery
      // records it as the write would have, so an interruption loses no cost from the run log.
      // Not under "row": that member of any event is a run-log row, and this one is not yet.
      intent.body["row_to_record"] = group[i].row->to_json();
    }
    intents.push_back(std::move(intent));
  }
  AVPS_TRY(m_ledger.commit(std::move(intents)));
  for (size_t i = 0; i < group.size(); ++i) {
    core::crash_point("store.after_intent");
  }
  // The faces: one alone is written durably (its folder synced with it); in a group each face's
  // bytes are synced and its folder once for the group, before anything records them.
  const core::Durability durability = group.size() == 1 ? core::Durability::durable : core::Durability::durable_content;
  std::set<fs::path> folders;
  for (const NewArtifact& artifact : group) {
    AVPS_TRY(write_face(artifact, durability));
    folders.insert((m_project_dir / artifact.name.relative_path()).parent_path());
    core::crash_point("store.after_face");
  }
  if (durability == core::Durability::durable_content) {
    core::crash_point("store.before_folder_sync");  // every face published, their folders not yet synced
    for (const fs::path& folder : folders) {
      AVPS_TRY(core::sync_directory(folder));
    }
  }

  // Deferred, one transaction for the group: the intents, the objects and the faces are durable
  // already, so a power cut that loses this commit leaves what a kill at store.after_face leaves,
  // and recover() records the writes. Durable with the caller's next synced commit (the next
  // call's intents, another write's intents, a command's end).
  std::vector<ledger::EventDraft> recorded;
  for (size_t i = 0; i < group.size(); ++i) {
    recorded.push_back(ledger::EventDraft{.kind = "artifact.recorded",
                                          .body = {{"details", group[i].details}},
                                          .row = group[i].row,
                                          .artifact = records[i]});
  }
  AVPS_TRY_ASSIGN(std::vector<ledger::Event> events, m_ledger.commit(std::move(recorded), ledger::Sync::deferred));
  for (size_t i = 0; i < records.size(); ++i) {
    records[i].event_seq = events[i].seq;
  }
  return records;
}

Result<std::optional<ledger::ArtifactRecord>> ArtifactStore::latest(std::string_view kind,
                                                                    std::string_view target) const {
  return m_ledger.latest_artifact(std::string(kind), std::string(target));
}

Result<ArtifactName> ArtifactStore::next_name(std::string_view kind, std::string_view target) const {
  AVPS_TRY_ASSIGN(std::optional<ledger::ArtifactRecord> current, latest(kind, target));
  return make_artifact_name(kind, target, current ? current->version + 1 : 1);
}

Result<json> ArtifactStore::load(const ledger::ArtifactRecord& record) const {
  Result<std::string> bytes = read_object(m_ledger, record.json_sha256);
  if (!bytes) {
    return make_error(bytes.error().code, "the stored JSON of " + record.name + ": " + bytes.error().message);
  }
  return core::parse_json(*bytes, record.name);
}

Result<void> ArtifactStore::recover() {
  // Each intent that never got an outcome (the last of its name): what it announced and the row
  // its write would have carried.
  AVPS_TRY_ASSIGN(std::vector<ledger::Event> unfinished, m_ledger.unfinished_intents());
  if (unfinished.empty()) {
    return ok();
  }
  struct Pending {
    ledger::ArtifactRecord record;
    json details;
    std::optional<ledger::LogRow> row;  // absent: no row, or an intent from before rows were in it
  };
  std::map<std::string, Pending> pending;  // by artifact name
  for (const ledger::Event& e : unfinished) {
    Result<ledger::ArtifactRecord> r = ledger::ArtifactRecord::from_json(e.body.value("intent", json::object()));
    if (!r) {
      return make_error(ErrorCode::corruption, "ledger event " + std::to_string(e.seq) + ": " + r.error().message);
    }
    Pending entry{*r, e.body.value("details", json::object()), std::nullopt};
    if (e.body.contains("row_to_record")) {
      Result<ledger::LogRow> row = ledger::LogRow::from_json(e.body["row_to_record"]);
      if (!row) {
        return make_error(ErrorCode::corruption, "ledger event " + std::to_string(e.seq) + ": " + row.error().message);
      }
      entry.row = std::move(*row);
    }
    pending.insert_or_assign(r->name, std::move(entry));
  }
  // Recovery is work of its own, recorded as its own run.
  bool own_run = m_ledger.run_id().empty();
  if (own_run) {
    AVPS_TRY(m_ledger.begin_run("recover", {{"interrupted_writes", pending.size()}}));
  }
  for (auto& [name, entry] : pending) {
    ledger::ArtifactRecord& record = entry.record;
    fs::path face = m_project_dir / record.path;
    Result<std::string> face_bytes = core::read_file(face);
    bool face_ok = face_bytes && core::sha256_hex(*face_bytes) == record.face_sha256;
    bool object_ok = static_cast<bool>(read_object(m_ledger, record.json_sha256));  // re-hashed
    if (face_ok && object_ok) {
      // The crash came after the files were durable: finish the write.
      json details = entry.details;
      details["recovered"] = true;
      // The run log names every artifact version, with the row the interrupted write would have
      // carried (in its intent). An intent from before rows were kept in it gets a row of its own.
      const std::string why = "recorded on recovery: the write was interrupted after its files were complete";
      ledger::LogRow row;
      if (entry.row) {
        row = *entry.row;
        row.notes = row.notes.empty() ? why : row.notes + " (" + why + ")";
      } else {
        row.skill_name = record.producer;
        row.outcome = "DONE";
        row.artifact_output = record.name;
        row.notes = why;
      }
      AVPS_TRY(m_ledger.commit({ledger::EventDraft{
          .kind = "artifact.recorded", .body = {{"details", details}}, .row = row, .artifact = record}}));
      continue;
    }
    if (face_bytes) {
      // AtomicFile never publishes a partial face, so a different complete file here was put
      // there by someone else; keep it for `avps gate` to report, and do not record it.
      return make_error(ErrorCode::corruption,
                        record.path + " exists but does not match the interrupted write that announced it");
    }
    AVPS_TRY(m_ledger.commit({ledger::EventDraft{
        .kind = "artifact.abandoned",
        .body = {{"name", record.name}, {"reason", "interrupted before its files were complete"}}}}));
  }
  if (own_run) {
    AVPS_TRY(m_ledger.end_run("DONE", json::object()));
  }
  return ok();
}

}  // namespace avps::artifacts
