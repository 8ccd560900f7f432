#include "avps/gates/integrity.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <charconv>
#include <functional>
#include <map>
#include <set>
#include <unordered_set>

#include "avps/artifacts/face.hpp"
#include "avps/artifacts/names.hpp"
#include "avps/artifacts/store.hpp"
#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/json_schema.hpp"
#include "avps/core/hash.hpp"
#include "avps/core/parallel.hpp"
#include "avps/gates/checked_objects.hpp"
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

fs::path mark_path(const fs::path& dir) { return dir / ".avps" / "verified"; }
constexpr std::string_view k_mark_magic = "avps-verified 1";

std::optional<FileSeen::Identity> identity_of(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return std::nullopt;
  }
  auto ns = [](const struct timespec& t) { return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec; };
  return FileSeen::Identity{static_cast<int64_t>(st.st_size), ns(st.st_mtim), ns(st.st_ctim),
                            static_cast<uint64_t>(st.st_ino), static_cast<uint64_t>(st.st_dev)};
}

// Whether a check takes each file's identity: only to compare it with a mark's, or to keep it in
// the mark it makes. `avps gate` does neither, and a stat a file (26,000 at 500 scenes) was a
// fifth of its system time.
enum class Identities { taken, not_taken };

// The sha256 of the file at `path` (an error when it cannot be read), `seen`'s when the file is
// still the one `seen` hashed as `recorded` (same identity), else read and hashed. `now` gets what
// a mark may keep of it: its identity is taken before its bytes are read, so a change after the
// read shows as a changed identity, and is kept only when the file had settled before the check
// (`settled_before_ns`). Without identities the file is always read and hashed.
Result<std::string> hash_file(const fs::path& path, const std::string& recorded, const FileSeen* seen, FileSeen& now,
                              int64_t settled_before_ns, Identities identities) {
  const std::optional<FileSeen::Identity> identity =
      identities == Identities::taken ? identity_of(path) : std::optional<FileSeen::Identity>();
  if (identity && seen != nullptr && seen->identity == identity && seen->sha256 == recorded) {
    now.sha256 = recorded;
    now.identity = identity;
    return recorded;
  }
  AVPS_TRY_ASSIGN(std::string bytes, core::read_file(path));
  now.sha256 = core::sha256_hex(bytes);
  if (identity && identity->mtime_ns < settled_before_ns && identity->ctime_ns < settled_before_ns) {
    now.identity = identity;
  }
  return now.sha256;
}

std::vector<std::string_view> split_tabs(std::string_view line) {
  std::vector<std::string_view> fields;
  for (;;) {
    const size_t tab = line.find('\t');
    fields.push_back(line.substr(0, tab));
    if (tab == std::string_view::npos) {
      return fields;
    }
    line.remove_prefix(tab + 1);
  }
}

template <typename T>
bool parse_number(std::string_view text, T& value) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

std::optional<VerifiedMark> read_verified_mark(const fs::path& dir) {
  Result<std::string> text = core::read_file(mark_path(dir));
  if (!text) {
    return std::nullopt;
  }
  VerifiedMark mark;
  std::string_view rest = *text;
  auto next_line = [&]() -> std::optional<std::string_view> {
    const size_t end = rest.find('\n');
    if (end == std::string_view::npos) {
      return std::nullopt;  // every line ends with one: a file cut short ends without
    }
    std::string_view line = rest.substr(0, end);
    rest.remove_prefix(end + 1);
    return line;
  };
  std::optional<std::string_view> line = next_line();
  if (!line || *line != k_mark_magic) {
    return std::nullopt;
  }
  line = next_line();
  std::vector<std::string_view> point = line ? split_tabs(*line) : std::vector<std::string_view>{};
  if (point.size() != 6 || point[0] != "point" || !parse_number(point[1], mark.ledger.seq) ||
      !parse_number(point[3], mark.ledger.run_log_bytes)) {
    return std::nullopt;
  }
  mark.ledger.hash = point[2];
  mark.ledger.run_log_sha256 = point[4];
  mark.ledger.tables_sha256 = point[5];
  while ((line = next_line())) {
    std::vector<std::string_view> f = split_tabs(*line);
    size_t count = 0;
    if (f.size() == 2 && f[0] == "end" && parse_number(f[1], count) && count == mark.files.size() && rest.empty()) {
      return mark;
    }
    if (f.size() != 8 || (f[0] != "face" && f[0] != "render")) {
      return std::nullopt;
    }
    FileSeen seen;
    seen.render = f[0] == "render";
    seen.sha256 = f[1];
    if (f[2] != "-") {
      FileSeen::Identity id;
      if (!parse_number(f[2], id.size) || !parse_number(f[3], id.mtime_ns) || !parse_number(f[4], id.ctime_ns) ||
          !parse_number(f[5], id.inode) || !parse_number(f[6], id.device)) {
        return std::nullopt;
      }
      seen.identity = id;
    }
    mark.files.emplace(std::string(f[7]), std::move(seen));
  }
  return std::nullopt;  // no end line: torn
}

Result<void> write_verified_mark(const fs::path& dir, const VerifiedMark& mark) {
  std::string text = std::string(k_mark_magic) + "\n";
  const ledger::Ledger::VerifiedPoint& p = mark.ledger;
  text += "point\t" + std::to_string(p.seq) + "\t" + p.hash + "\t" + std::to_string(p.run_log_bytes) + "\t" +
          p.run_log_sha256 + "\t" + p.tables_sha256 + "\n";
  size_t count = 0;
  for (const auto& [path, seen] : mark.files) {
    if (path.find_first_of("\t\n") != std::string::npos) {
      continue;  // not kept: such a file is hashed every time
    }
    text += (seen.render ? "render\t" : "face\t") + seen.sha256 + "\t";
    if (const std::optional<FileSeen::Identity>& id = seen.identity) {
      text += std::to_string(id->size) + "\t" + std::to_string(id->mtime_ns) + "\t" + std::to_string(id->ctime_ns) +
              "\t" + std::to_string(id->inode) + "\t" + std::to_string(id->device);
    } else {
      text += "-\t-\t-\t-\t-";
    }
    text += "\t" + path + "\n";
    ++count;
  }
  text += "end\t" + std::to_string(count) + "\n";
  return core::write_file_atomic(mark_path(dir), text, core::Overwrite::yes, core::Durability::cached);
}

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
  // A file changed after this is hashed again by the next check (FileSeen::identity).
  const int64_t settled_before_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count() -
      VerifiedMark::k_settled_ns;

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
  std::unordered_set<std::string> logged_outputs;  // looked up only: hashed, not ordered (18,000 names at 500 scenes)
  std::vector<core::Violation> rowless_steps;
  struct Vouched {
    std::string sha256;
    int64_t seq = 0;  // 0: vouched for by the mark (`since`)
  };
  std::map<std::string, Vouched> renders;  // path -> the media.recorded that vouches for it
  // Every object an exchange names (the canonical request, the answer, the wire bodies, a
  // render's bytes), to be found present and unchanged once the pass is over (the pass holds the
  // ledger, which reads them). An object named by several events is checked once, against the
  // first that named it.
  // Each kept as pointers into two sets (a set's elements stay where they are, in a hashed set
  // across its rehashes too): a season names tens of thousands of objects, and a copy of every
  // name beside them would be the gate's peak. The order they are checked in is objects_to_check's.
  struct NamedObject {
    const std::string* sha;
    const std::string* field;
    const std::string* who;
    const std::string* kind;
    int64_t seq = 0;
  };
  std::unordered_set<std::string> named_objects;
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
      renders.insert_or_assign(render->path, Vouched{std::move(render->sha256), e.seq});
    }
    return ok();
  };
  const VerifiedMark* since = options.since;
  ledger::Ledger::VerifiedPoint reached;  // kept as the mark when nothing at all is found
  std::vector<core::Violation> ledger_violations =
      ledger.verify(&visitor, since != nullptr ? &since->ledger : nullptr, options.clean != nullptr ? &reached : nullptr);
  out.insert(out.end(), ledger_violations.begin(), ledger_violations.end());
  // The events up to `after` (0: none) were vouched for by the mark's point and not read: what
  // they recorded is checked against the mark below.
  const int64_t after = visitor.after_seq;
  const VerifiedMark* mark = after > 0 ? since : nullptr;
  auto seen_in_mark = [&](const std::string& path) -> const FileSeen* {
    if (mark == nullptr) {
      return nullptr;
    }
    auto it = mark->files.find(path);
    return it == mark->files.end() ? nullptr : &it->second;
  };
  std::map<std::string, FileSeen> clean_files;  // what this check found as recorded, for options.clean
  const Identities identities = mark != nullptr || options.clean != nullptr ? Identities::taken : Identities::not_taken;
  if (mark != nullptr) {
    for (const auto& [path, seen] : mark->files) {
      if (seen.render) {
        renders.try_emplace(path, Vouched{seen.sha256, 0});  // unless recorded again since
      }
    }
  }

  Result<std::vector<ledger::ArtifactRecord>> records = ledger.artifacts();
  if (!records) {
    add("ledger.readable", ".avps/ledger.db", records.error().message);
    return out;
  }
  if (visitor.failed) {
    add("ledger.readable", ".avps/ledger.db", visitor.failed->message);
    return out;
  }
  // (Named after the mark's point, when there is one.) On `options.threads` threads, each reading
  // through a connection of its own when one reads this snapshot (Ledger::another_reader); each
  // finding in its object's place, so they are listed in the order the objects were named.
  static constexpr size_t k_objects_taken = 16;
  std::vector<std::unique_ptr<ledger::Ledger>> own_readers;
  std::vector<const ledger::Ledger*> readers{&ledger};
  for (size_t t = 1; t < core::threads_used(objects_to_check.size(), options.threads, k_objects_taken); ++t) {
    Result<std::unique_ptr<ledger::Ledger>> own = ledger.another_reader();
    if (!own || !*own) {
      break;  // none reads this snapshot (a writer has committed since): fewer threads read them
    }
    own_readers.push_back(std::move(own).value());
    readers.push_back(own_readers.back().get());
  }
  std::vector<std::optional<core::Violation>> found_of_object(objects_to_check.size());
  core::for_each_index(objects_to_check.size(), readers.size(), k_objects_taken, [&](size_t thread, size_t i) {
    const NamedObject& o = objects_to_check[i];
    Result<std::string> bytes = artifacts::read_object(*readers[thread], *o.sha);
    if (!bytes) {
      const std::string subject = artifacts::object_subject(*readers[thread], *o.sha);
      found_of_object[i] = core::Violation{
          bytes.error().code == ErrorCode::not_found ? "object.missing" : "object.hash", subject,
          *o.field + " of " + *o.kind + " (ledger event " + std::to_string(o.seq) + ", " +
              (o.who->empty() ? "?" : *o.who) + ") " +
              (bytes.error().code == ErrorCode::not_found ? "is gone" : "no longer matches its hash")};
    }
  });
  own_readers.clear();  // closed: not held while the record check reads
  std::vector<core::Violation> object_findings;
  for (std::optional<core::Violation>& found : found_of_object) {
    if (found) {
      object_findings.push_back(std::move(*found));
    }
  }
  // Checked: not held while the record check below reads (a season names tens of thousands).
  objects_to_check = {};
  named_objects = {};
  labels = {};

  // Every face and every render read and hashed now, before after_events: `avps gate`'s record
  // check runs on another thread until after_events returns, and this is the integrity check's
  // work that needs nothing of it. Only the hashes are kept (not the bytes), each in its file's
  // place, in the order the loops below report them. On `options.threads` threads (files only).
  struct Hashed {
    Result<std::string> sha256 = make_error(ErrorCode::io_error, "not hashed");
    FileSeen found;
  };
  std::vector<Hashed> faces_hashed(records->size());
  std::vector<const std::pair<const std::string, Vouched>*> render_list;
  render_list.reserve(renders.size());
  for (const auto& render : renders) {
    render_list.push_back(&render);
  }
  std::vector<Hashed> renders_hashed(render_list.size());
  core::for_each_index(faces_hashed.size() + render_list.size(), options.threads, 64, [&](size_t, size_t i) {
    if (i < faces_hashed.size()) {
      const ledger::ArtifactRecord& r = (*records)[i];
      Hashed& hashed = faces_hashed[i];
      hashed.sha256 =
          hash_file(dir / r.path, r.face_sha256, seen_in_mark(r.path), hashed.found, settled_before_ns, identities);
    } else {
      const auto& [path, vouched] = *render_list[i - faces_hashed.size()];
      Hashed& hashed = renders_hashed[i - faces_hashed.size()];
      hashed.found.render = true;
      hashed.sha256 =
          hash_file(dir / path, vouched.sha256, seen_in_mark(path), hashed.found, settled_before_ns, identities);
    }
  });

  // The record check of `avps gate` ends here (it runs beside what is above, on its own thread),
  // before the artifacts' objects are looked at: those it read are noted (CheckedObjects).
  if (options.after_events) {
    options.after_events();
  }
  CheckedObjects own_checked(dir);  // the codecs, when the caller shares none
  CheckedObjects& checked = options.checked != nullptr ? *options.checked : own_checked;

  // Each artifact's content valid against its kind's schema as it is now (a schema changed since,
  // or content recorded by an older avps, shows here). Images have no schema. `canonical` gives
  // the object's bytes, read and hash-verified, when they are needed; `noted` is what the record
  // check found of the same object, when it read it.
  std::set<std::string> kinds_met;  // the first artifact of a kind without a schema says why
  auto schema_problem = [&](const ledger::ArtifactRecord& r, const CheckedObjects::Noted* noted,
                            const std::function<Result<std::string>()>& canonical)
      -> Result<std::optional<std::string>> {
    const artifacts::KindInfo* info = artifacts::find_kind(r.kind);
    if (info != nullptr && info->extension == "png") {
      return std::optional<std::string>();
    }
    const bool first_of_kind = kinds_met.insert(r.kind).second;
    const Result<artifacts::FaceCodec>& codec = checked.codec(r.kind);
    if (!codec) {
      return std::optional<std::string>(first_of_kind ? "no schema to check it against: " + codec.error().message
                                                      : "no schema to check it against");
    }
    const std::vector<core::SchemaIssue>* noted_issues = nullptr;
    if (noted != nullptr) {
      if (auto found = noted->issues_by_kind.find(r.kind); found != noted->issues_by_kind.end()) {
        noted_issues = &found->second;
      }
    }
    std::vector<core::SchemaIssue> issues;
    if (noted_issues != nullptr) {
      issues = *noted_issues;
    } else {
      AVPS_TRY_ASSIGN(std::string bytes, canonical());
      Result<json> content = core::parse_json(bytes, r.name);
      if (!content) {
        return std::optional<std::string>(content.error().message);
      }
      issues = codec->schema().validate(*content);
    }
    if (issues.empty()) {
      return std::optional<std::string>();
    }
    return std::optional<std::string>("its content breaks " + std::string(r.kind) +
                                      "'s schema: " + core::format_schema_issues(r.name, issues));
  };

  // Recorded artifacts: face and object present and unchanged.
  std::set<std::string> recorded_paths;
  std::map<std::pair<std::string, std::string>, std::vector<int>> versions;
  for (size_t i = 0; i < records->size(); ++i) {
    const ledger::ArtifactRecord& r = (*records)[i];
    recorded_paths.insert(r.path);
    versions[{r.kind, r.target}].push_back(r.version);
    const Result<std::string>& face = faces_hashed[i].sha256;
    if (!face) {
      add("artifact.missing", r.path,
          face.error().code == ErrorCode::not_found
              ? "recorded by ledger event " + std::to_string(r.event_seq) + " but the file is gone"
              : face.error().message);
    } else if (*face != r.face_sha256) {
      add("artifact.hash", r.path,
          "content changed since ledger event " + std::to_string(r.event_seq) + " recorded it (sha256 " +
              face->substr(0, 12) + "..., recorded " + r.face_sha256.substr(0, 12) + "...)");
    } else if (options.clean != nullptr) {
      clean_files.insert_or_assign(r.path, std::move(faces_hashed[i].found));
    }
    // (Recorded up to the mark's point, its object is re-hashed by whoever reads it.)
    if (r.event_seq > after) {
      // Read and hash-verified here, unless the record check did in this process, from the same
      // snapshot (CheckedObjects).
      const CheckedObjects::Noted* noted = checked.find(r.json_sha256);
      auto read = [&]() { return artifacts::read_object(ledger, r.json_sha256); };
      std::optional<Result<std::string>> stored;
      if (noted == nullptr) {
        stored = read();
      }
      Result<std::optional<std::string>> invalid = std::optional<std::string>();
      if (stored && !*stored) {
        invalid = std::move(*stored).error();
      } else if (options.schemas) {
        invalid = schema_problem(r, noted, [&]() -> Result<std::string> {
          if (!stored) {
            stored = read();
          }
          return *stored;
        });
      }
      if (!invalid) {
        add("artifact.object", artifacts::object_subject(ledger, r.json_sha256),
            "canonical JSON of " + r.name +
                (invalid.error().code == ErrorCode::not_found ? " is missing" : " does not match its hash"));
      } else if (*invalid) {
        add("artifact.schema", r.path, **invalid);
      }
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
    if (r.event_seq > after && !logged_outputs.count(r.name)) {  // (up to the point: named when it was made)
      add("run_log.row", r.path, "recorded by ledger event " + std::to_string(r.event_seq) + " but no run-log row names it");
      out.back().transient = true;  // some producers record the artifact, then the row that names it
    }
  }

  // Every object an exchange names (checked in the pass above) and every render under media/:
  // present and unchanged.
  out.insert(out.end(), object_findings.begin(), object_findings.end());
  size_t render_index = 0;
  for (const auto& [path, vouched] : renders) {
    Hashed& hashed = renders_hashed[render_index++];
    const std::string& recorded = vouched.sha256;
    const Result<std::string>& sha256 = hashed.sha256;
    if (!sha256) {
      add("media.missing", path,
          sha256.error().code == ErrorCode::not_found
              ? "render recorded by ledger event " + std::to_string(vouched.seq) + " but the file is gone"
              : sha256.error().message);
    } else if (*sha256 != recorded) {
      add("media.hash", path,
          "render changed since ledger event " + std::to_string(vouched.seq) + " recorded it (sha256 " +
              sha256->substr(0, 12) + "..., recorded " + recorded.substr(0, 12) + "...)");
    } else if (options.clean != nullptr) {
      clean_files.insert_or_assign(path, std::move(hashed.found));
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
  if (mark != nullptr && !out.empty()) {
    // Found from a mark: the whole check says what it is (every finding with the event that
    // recorded what it names, and whatever else there is).
    IntegrityOptions whole = options;
    whole.since = nullptr;
    whole.after_events = nullptr;  // called once, above
    return check_integrity(dir, ledger, files, whole);
  }
  if (out.empty() && options.clean != nullptr && reached.seq > 0) {
    options.clean->ledger = std::move(reached);
    options.clean->files = std::move(clean_files);
  }
  return out;
}

}  // namespace avps::gates
