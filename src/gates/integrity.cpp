#include "avps/gates/integrity.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "avps/artifacts/face.hpp"
#include "avps/artifacts/names.hpp"
#include "avps/artifacts/store.hpp"
#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/json_schema.hpp"
#include "avps/core/hash.hpp"
#include "avps/ledger/events.hpp"
#include "avps/project/config.hpp"
#include "avps/project/project.hpp"

namespace avps::gates {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Folders whose files are the project's inputs or avps's own state, not artifacts.
bool is_excluded_top_level(const std::string& name) {
  return name == ".avps" || name == "skills" || name == "policies" || name == ".git";
}

}  // namespace

const std::vector<std::string>& integrity_rules() {
  static const std::vector<std::string> k_rules = {
      "config.valid",     "ledger.readable",    "ledger.append_only", "ledger.hash",       "ledger.chain",
      "ledger.head",      "ledger.index",       "ledger.budget",      "run_log.face",      "run_log.row",        "artifact.missing",
      "artifact.hash",    "artifact.object",    "artifact.schema",    "artifact.unrecorded", "artifact.name",    "artifact.gap",
      "artifact.interrupted", "object.missing", "object.hash",        "media.missing",     "media.hash",
      "media.unrecorded"};
  return k_rules;
}

ProjectFiles list_project_files(const fs::path& dir) {
  ProjectFiles files;
  std::error_code media_ec;
  for (auto it = fs::recursive_directory_iterator(dir / "media", media_ec);
       !media_ec && it != fs::recursive_directory_iterator(); it.increment(media_ec)) {
    if (!it->is_directory() && !core::is_atomic_temp_name(it->path().filename().string())) {
      files.media.push_back(it->path().lexically_relative(dir).generic_string());
    }
  }
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    fs::path relative = it->path().lexically_relative(dir);
    if (it.depth() == 0 && it->is_directory() && is_excluded_top_level(relative.string())) {
      it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file() && !it->is_symlink()) {
      continue;
    }
    std::string name = it->path().filename().string();
    if (!core::is_atomic_temp_name(name) && artifacts::looks_like_artifact_name(name)) {
      files.artifact_named.push_back(relative.string());
    }
  }
  std::sort(files.media.begin(), files.media.end());
  std::sort(files.artifact_named.begin(), files.artifact_named.end());
  return files;
}

std::vector<core::Violation> check_integrity(const fs::path& dir, const ledger::Ledger& ledger) {
  return check_integrity(dir, ledger, list_project_files(dir));
}

std::vector<core::Violation> check_integrity(const fs::path& dir, const ledger::Ledger& ledger,
                                             const ProjectFiles& files, const IntegrityOptions& options) {
  std::vector<core::Violation> out;
  auto add = [&](std::string rule, std::string subject, std::string message) {
    out.push_back(core::Violation{std::move(rule), std::move(subject), std::move(message)});
  };

  project::ConfigSources sources{dir, project::data_dir(), {}, {}};
  if (Result<project::Config> config = project::load_config(sources); !config) {
    add("config.valid", "avps.json", config.error().message);
  }
  // The project's own artifact kinds (its schemas' x-avps-artifact blocks): their names are
  // checked like the shipped ones, so they must be known before any name is read.
  if (Result<void> declared = project::declare_project_kinds(dir); !declared) {
    add("config.valid", "schemas/", declared.error().message);
  }

  // What the checks below read of the events, gathered in the ledger's own pass over them
  // (Ledger::verify hands each event on as it reads it: the record is never held whole): the
  // writes announced and not finished, the artifacts the run log names and the steps without a
  // row, every object an exchange names, and the render each media path was last recorded as.
  // Findings are reported in the order the checks below give them.
  std::map<std::string, std::string> pending;  // name -> path
  std::set<std::string> logged_outputs;
  std::vector<core::Violation> rowless_steps;
  struct Vouched {
    ledger::MediaRecorded render;
    int64_t seq = 0;
  };
  std::map<std::string, Vouched> renders;  // path -> the media.recorded that vouches for it
  // Every object an exchange names (the canonical request, the answer, the wire bodies, a
  // render's bytes), to be found present and unchanged once the pass is over (the pass holds the
  // ledger, which reads them). An object named by several events is checked once, against the
  // first that named it.
  // Each kept as pointers into two sets (a set's elements stay where they are): a season names
  // tens of thousands of objects, and a copy of every name beside them would be the gate's peak.
  struct NamedObject {
    const std::string* sha;
    const std::string* field;
    const std::string* who;
    const std::string* kind;
    int64_t seq = 0;
  };
  std::set<std::string> named_objects;
  std::set<std::string> labels;  // the few field, skill and kind names the objects are named with
  std::vector<NamedObject> objects_to_check;
  auto name_object = [&](const std::string& sha, const std::string& field, const std::string& who,
                         const ledger::Event& e) {
    if (sha.empty()) {
      return;
    }
    if (auto [named, fresh] = named_objects.insert(sha); fresh) {
      objects_to_check.push_back(NamedObject{&*named, &*labels.insert(field).first, &*labels.insert(who).first,
                                             &*labels.insert(e.kind).first, e.seq});
    }
  };
  ledger::Ledger::EventVisitor visitor;
  // Only the members read below (of artifact.intent, artifact.recorded and .abandoned, the row,
  // step.finished, exchange.intent and .response, media.recorded): the rest of a body is not parsed.
  visitor.members = {"intent", "name", "row", "artifact", "skill", "model", "request_sha256", "response_sha256",
                     "media_sha256", "wire_request_sha256", "wire_response_sha256", "path", "sha256"};
  if (options.also != nullptr) {
    for (const std::string& member : options.also->members) {
      if (std::find(visitor.members.begin(), visitor.members.end(), member) == visitor.members.end()) {
        visitor.members.push_back(member);
      }
    }
  }
  visitor.each = [&](ledger::Event&& e) -> Result<void> {
    if (e.kind == "artifact.intent" && e.body.contains("intent")) {
      pending[e.body["intent"].value("name", "")] = e.body["intent"].value("path", "");
    } else if (std::optional<ledger::ArtifactRecord> a = e.artifact()) {
      pending.erase(a->name);
    } else if (e.kind == "artifact.abandoned") {
      pending.erase(e.body.value("name", ""));
    }
    if (std::optional<ledger::LogRow> row = e.row()) {
      std::string_view outputs = row->artifact_output;
      while (!outputs.empty()) {
        const size_t end = std::min(outputs.find(' '), outputs.size());
        logged_outputs.insert(std::string(outputs.substr(0, end)));
        outputs.remove_prefix(std::min(end + 1, outputs.size()));
      }
    } else if (e.kind == "step.finished") {
      rowless_steps.push_back(
          core::Violation{"run_log.row", "ledger event " + std::to_string(e.seq),
                          "the " + e.body.value("skill", std::string("?")) + " step it records has no run-log row"});
    }
    if (std::optional<ledger::ExchangeIntent> intent = ledger::ExchangeIntent::from_event(e)) {
      name_object(intent->request_sha256, "request_sha256", intent->skill.empty() ? intent->model : intent->skill, e);
    } else if (std::optional<ledger::ExchangeResponse> response = ledger::ExchangeResponse::from_event(e)) {
      const std::string skill = core::json_text(response->body, "skill");
      for (const auto& [field, sha] : response->objects()) {
        name_object(sha, field, skill.empty() ? response->model : skill, e);
      }
    } else if (std::optional<ledger::MediaRecorded> render = ledger::MediaRecorded::from_event(e)) {
      const std::string path = render->path;
      renders.insert_or_assign(path, Vouched{std::move(*render), e.seq});
    }
    if (options.also != nullptr && !options.also->failed) {
      if (Result<void> taken = options.also->each(std::move(e)); !taken) {
        options.also->failed = taken.error();  // the other reader's failure, not the integrity check's
      }
    }
    return ok();
  };
  std::vector<core::Violation> ledger_violations = ledger.verify(&visitor);
  if (options.also != nullptr && visitor.failed && !options.also->failed) {
    options.also->failed = visitor.failed;
  }
  out.insert(out.end(), ledger_violations.begin(), ledger_violations.end());

  Result<std::vector<ledger::ArtifactRecord>> records = ledger.artifacts();
  if (!records) {
    add("ledger.readable", ".avps/ledger.db", records.error().message);
    return out;
  }
  if (visitor.failed) {
    add("ledger.readable", ".avps/ledger.db", visitor.failed->message);
    return out;
  }
  std::vector<core::Violation> object_findings;
  for (const NamedObject& o : objects_to_check) {
    Result<std::string> bytes = artifacts::read_object(ledger, *o.sha);
    if (!bytes) {
      const std::string subject = artifacts::object_subject(ledger, *o.sha);
      object_findings.push_back(core::Violation{
          bytes.error().code == ErrorCode::not_found ? "object.missing" : "object.hash", subject,
          *o.field + " of " + *o.kind + " (ledger event " + std::to_string(o.seq) + ", " +
              (o.who->empty() ? "?" : *o.who) + ") " +
              (bytes.error().code == ErrorCode::not_found ? "is gone" : "no longer matches its hash")});
    }
  }

  // Each artifact's content valid against its kind's schema as it is now (a schema changed since,
  // or content recorded by an older avps, shows here). Images have no schema.
  std::map<std::string, std::optional<artifacts::FaceCodec>> codecs;  // by kind; nullopt: no schema
  auto schema_problem = [&](const ledger::ArtifactRecord& r, const std::string& canonical) -> std::optional<std::string> {
    const artifacts::KindInfo* info = artifacts::find_kind(r.kind);
    if (info != nullptr && info->extension == "png") {
      return std::nullopt;
    }
    auto [codec, fresh] = codecs.try_emplace(r.kind);
    if (fresh) {
      Result<artifacts::FaceCodec> loaded = artifacts::FaceCodec::load(project::schema_dirs(dir), r.kind);
      if (!loaded) {
        codecs[r.kind] = std::nullopt;
        return "no schema to check it against: " + loaded.error().message;
      }
      codec->second = std::move(loaded).value();
    }
    if (!codec->second) {
      return "no schema to check it against";
    }
    Result<json> content = core::parse_json(canonical, r.name);
    if (!content) {
      return content.error().message;
    }
    std::vector<core::SchemaIssue> issues = codec->second->schema().validate(*content);
    if (issues.empty()) {
      return std::nullopt;
    }
    return "its content breaks " + std::string(r.kind) + "'s schema: " + core::format_schema_issues(r.name, issues);
  };

  // Recorded artifacts: face and object present and unchanged.
  std::set<std::string> recorded_paths;
  std::map<std::pair<std::string, std::string>, std::vector<int>> versions;
  for (const ledger::ArtifactRecord& r : *records) {
    recorded_paths.insert(r.path);
    versions[{r.kind, r.target}].push_back(r.version);
    Result<std::string> face = core::read_file(dir / r.path);
    if (!face) {
      add("artifact.missing", r.path,
          face.error().code == ErrorCode::not_found
              ? "recorded by ledger event " + std::to_string(r.event_seq) + " but the file is gone"
              : face.error().message);
    } else if (core::sha256_hex(*face) != r.face_sha256) {
      add("artifact.hash", r.path,
          "content changed since ledger event " + std::to_string(r.event_seq) + " recorded it (sha256 " +
              core::sha256_hex(*face).substr(0, 12) + "..., recorded " + r.face_sha256.substr(0, 12) + "...)");
    }
    Result<std::string> stored = artifacts::read_object(ledger, r.json_sha256);
    if (!stored) {
      add("artifact.object", artifacts::object_subject(ledger, r.json_sha256),
          "canonical JSON of " + r.name +
              (stored.error().code == ErrorCode::not_found ? " is missing" : " does not match its hash"));
    } else if (std::optional<std::string> invalid = options.schemas ? schema_problem(r, *stored) : std::nullopt) {
      add("artifact.schema", r.path, *invalid);
    }
    Result<artifacts::ArtifactName> parsed = artifacts::parse_artifact_name(r.name);
    if (!parsed) {
      add("artifact.name", r.path, parsed.error().message);
    } else if (parsed->relative_path() != r.path) {
      add("artifact.name", r.path, "recorded at the wrong place; its name belongs in " + parsed->relative_path());
    }
  }

  // Versions of each artifact run 1..n with no gap.
  for (auto& [key, list] : versions) {
    std::sort(list.begin(), list.end());
    for (size_t i = 0; i < list.size(); ++i) {
      int want = static_cast<int>(i) + 1;
      if (list[i] != want) {
        Result<artifacts::ArtifactName> missing = artifacts::make_artifact_name(key.first, key.second, want);
        add("artifact.gap", missing ? missing->relative_path() : key.first + " " + key.second,
            "version " + std::to_string(want) + " is missing between recorded versions");
        break;
      }
    }
  }

  // Writes announced but never finished or abandoned.
  std::set<std::string> pending_paths;
  for (const auto& [name, path] : pending) {
    add("artifact.interrupted", path,
        "a write of " + name + " was interrupted; run a writing command (e.g. `avps run`) to recover it");
    out.back().transient = true;
    pending_paths.insert(path);
  }

  // The run log is complete (DESIGN §3, run-logger): a row for every skill execution, and every
  // artifact version named by a row (the QC_BATCH of every wave included).
  out.insert(out.end(), rowless_steps.begin(), rowless_steps.end());
  for (const ledger::ArtifactRecord& r : *records) {
    if (!logged_outputs.count(r.name)) {
      add("run_log.row", r.path, "recorded by ledger event " + std::to_string(r.event_seq) + " but no run-log row names it");
      out.back().transient = true;  // some producers record the artifact, then the row that names it
    }
  }

  // Every object an exchange names (checked in the pass above) and every render under media/:
  // present and unchanged.
  out.insert(out.end(), object_findings.begin(), object_findings.end());
  for (const auto& [path, vouched] : renders) {
    Result<std::string> bytes = core::read_file(dir / path);
    const std::string& recorded = vouched.render.sha256;
    if (!bytes) {
      add("media.missing", path,
          bytes.error().code == ErrorCode::not_found
              ? "render recorded by ledger event " + std::to_string(vouched.seq) + " but the file is gone"
              : bytes.error().message);
    } else if (const std::string found = core::sha256_hex(*bytes); found != recorded) {
      add("media.hash", path,
          "render changed since ledger event " + std::to_string(vouched.seq) + " recorded it (sha256 " +
              found.substr(0, 12) + "..., recorded " + recorded.substr(0, 12) + "...)");
    }
  }
  for (const std::string& path : files.media) {
    if (!renders.count(path)) {
      add("media.unrecorded", path,
          "under media/ but recorded by no ledger event (added or swapped in by hand, or left by a run "
          "interrupted before it recorded the render: `avps run` records it)");
      out.back().transient = true;  // a run writes the render, then records it
    }
  }

  // Files in the project that look like artifacts but the ledger does not know.
  for (const std::string& path : files.artifact_named) {
    if (recorded_paths.count(path) || pending_paths.count(path) || path == ledger::k_run_log_relative) {
      continue;
    }
    Result<artifacts::ArtifactName> parsed = artifacts::parse_artifact_name(fs::path(path).filename().string());
    if (!parsed) {
      add("artifact.name", path, parsed.error().message);
    } else {
      add("artifact.unrecorded", path, "named like an artifact but never recorded by the ledger (added by hand?)");
    }
  }
  return out;
}

}  // namespace avps::gates
