#include "avps/project/project.hpp"

#include <unistd.h>

#include <algorithm>
#include <set>

#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/hash.hpp"
#include "initial_artifacts.hpp"

namespace avps::project {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json avps_json_template(const std::string& title) {
  return {
      {"$schema", "avps:schemas/project.schema.json"},
      {"format_version", 1},
      {"title", title},
      {"brief", "brief.md"},
      {"seed", 1},
      {"budget", {{"project_cap_usd", 1000}}},
      {"style",
       {{"visual_style", "Naturalistic cinematic realism, grounded and unstylised"},
        {"palette", "Muted earth tones with one restrained accent colour"},
        {"lighting", "Motivated practical sources, soft key, gentle contrast"},
        {"camera_language", "Steady, eye-level framing; slow deliberate moves; no handheld shake"},
        {"aspect_ratio", "2.39:1"},
        {"frame_rate", 24},
        {"resolution", {{"proxy", "640x360"}, {"final", "1920x1080"}}},
        {"forbidden_drift",
         {"no change of film stock or grade between shots of a scene", "no cartoon or anime rendering",
          "no on-screen text or watermarks"}}}},
  };
}

const char* k_brief_template = R"(# Brief

Replace each section; avps reads this file as the story's starting point.

## Premise
One or two sentences: who wants what, what stands in the way, what is at stake.

## Genre and tone
e.g. "Grounded thriller; tense, quiet, humane."

## Length
short | episode | feature — and a target scene count.

## Characters
- Name — role, age, one-line description.

## Locations
- Name — what it is, time period, mood.

## Themes (optional)
)";

}  // namespace

fs::path data_dir() {
  if (const char* home = std::getenv("AVPS_HOME"); home && *home) {
    return home;
  }
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path installed = exe.parent_path().parent_path() / "share" / "avps";
    if (fs::exists(installed / "schemas" / "project.schema.json")) {
      return installed;
    }
  }
  return AVPS_SOURCE_DATA_DIR;
}

const std::vector<std::string>& project_folders() {
  static const std::vector<std::string> k_folders = {"narrative", "validation", "continuity", "production", "governance",
                                                     "media",     "reports",    "cut",        "logs",       ".avps"};
  return k_folders;
}

bool is_project_source_entry(const std::string& name) {
  static const std::set<std::string> k_sources = {"avps.json", "brief.md",  "models.json", "skills", "policies",
                                                  "schemas",   "README.md", ".gitignore",  ".git"};
  return k_sources.count(name) > 0;
}

// Whether the project folder `name` of `dir` holds only what an `avps init` writes before its
// ledger is published (ledger::Ledger::create): the folders, the writer lock, HEAD, the ledger being
// built, the CSV face's header, and AtomicFile temps. An init killed before that point leaves just
// this, and the next init starts over in it.
bool left_by_unfinished_init(const fs::path& dir, const std::string& name) {
  static const std::set<std::string> k_early = {".avps/lock",
                                                ".avps/HEAD",
                                                ".avps/ledger.db.new",
                                                ".avps/ledger.db.new-wal",
                                                ".avps/ledger.db.new-shm",
                                                ".avps/ledger.db.new-journal",
                                                ledger::k_run_log_relative};
  if (std::find(project_folders().begin(), project_folders().end(), name) == project_folders().end()) {
    return false;
  }
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir / name, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_directory()) {
      continue;
    }
    const std::string relative = fs::relative(it->path(), dir).generic_string();
    if (!k_early.count(relative) && !core::is_atomic_temp_name(it->path().filename().string())) {
      return false;
    }
  }
  return !ec;
}

FolderInspection inspect_folder(const fs::path& dir) {
  FolderInspection out;
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    out.state = FolderState::missing;
    return out;
  }
  if (fs::exists(ledger::ledger_path(dir), ec)) {
    out.state = FolderState::project;
    return out;
  }
  bool any = false;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    any = true;
    std::string name = entry.path().filename().string();
    if (!is_project_source_entry(name) && !left_by_unfinished_init(dir, name)) {
      out.foreign_entries.push_back(name);
    }
  }
  std::sort(out.foreign_entries.begin(), out.foreign_entries.end());
  out.state = !any ? FolderState::empty : out.foreign_entries.empty() ? FolderState::sources_only : FolderState::foreign;
  return out;
}

Result<void> remove_stale_temp_files(const fs::path& dir) {
  for (const std::string& folder : project_folders()) {
    std::error_code ec;
    fs::path root = dir / folder;
    if (!fs::is_directory(root, ec)) {
      continue;
    }
    for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (it->is_regular_file() && core::is_atomic_temp_name(it->path().filename().string())) {
        std::error_code removed;
        fs::remove(it->path(), removed);
        if (removed) {
          return make_error(ErrorCode::io_error, "cannot remove stale temp file " + it->path().string());
        }
      }
    }
  }
  return ok();
}

Result<std::vector<artifacts::DeclaredKind>> read_declared_kinds(const fs::path& dir) {
  std::vector<artifacts::DeclaredKind> out;
  const fs::path folder = dir / "schemas";
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) {
    return out;
  }
  std::vector<fs::path> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(folder, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 12 && name.ends_with(".schema.json") && entry.is_regular_file()) {
      files.push_back(entry.path());
    }
  }
  if (ec) {
    return make_error(ErrorCode::io_error, "cannot list " + folder.string() + ": " + ec.message());
  }
  std::sort(files.begin(), files.end());
  std::string problems;
  for (const fs::path& file : files) {
    const std::string name = file.filename().string();
    Result<std::string> text = core::read_file(file);
    Result<json> document =
        text ? core::parse_json(*text, (fs::path("schemas") / name).string()) : Result<json>(text.error());
    if (!document) {
      problems += "\n  schemas/" + name + ": " + document.error().message;
      continue;
    }
    Result<std::optional<artifacts::DeclaredKind>> declared = artifacts::read_kind_declaration(*document, name);
    if (!declared) {
      problems += "\n  schemas/" + declared.error().message;
    } else if (*declared) {
      out.push_back(std::move(**declared));
    }
  }
  for (const std::string& problem : artifacts::kind_declaration_problems(out)) {
    problems += "\n  schemas/" + problem;
  }
  if (!problems.empty()) {
    return make_error(ErrorCode::configuration, dir.string() +
                                                    ": the project's schemas do not declare usable "
                                                    "artifact kinds (`avps skills validate` checks them):" +
                                                    problems);
  }
  return out;
}

Result<void> declare_project_kinds(const fs::path& dir) {
  AVPS_TRY_ASSIGN(std::vector<artifacts::DeclaredKind> declared, read_declared_kinds(dir));
  Result<void> done = artifacts::declare_kinds(declared);
  if (!done) {
    return make_error(ErrorCode::configuration, done.error().message);
  }
  return ok();
}

std::vector<fs::path> schema_dirs(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!dir.empty() && fs::is_directory(dir / "schemas", ec)) {
    out.push_back(dir / "schemas");
  }
  out.push_back(data_dir() / "schemas");
  return out;
}

Result<std::unique_ptr<Project>> Project::open(const fs::path& dir, ledger::OpenMode mode,
                                               const std::vector<Override>& overrides, const core::Clock& clock) {
  auto project = std::unique_ptr<Project>(new Project());
  project->m_dir = dir;
  // The project's own artifact kinds first: recovery and every reader parse its names.
  AVPS_TRY(declare_project_kinds(dir));
  AVPS_TRY_ASSIGN(project->m_ledger, ledger::Ledger::open(dir, mode, clock));
  ConfigSources sources{dir, data_dir(), overrides, process_environment()};
  AVPS_TRY_ASSIGN(project->m_config, load_config(sources));
  project->m_store = std::make_unique<artifacts::ArtifactStore>(dir, *project->m_ledger);
  if (mode == ledger::OpenMode::read_write) {
    AVPS_TRY(remove_stale_temp_files(dir));
    AVPS_TRY(project->m_store->recover());
  }
  return project;
}

Result<std::unique_ptr<Project>> Project::init(const fs::path& dir, const std::string& title,
                                               const std::vector<Override>& overrides, const core::Clock& clock) {
  FolderInspection inspection = inspect_folder(dir);
  bool resuming = false;
  switch (inspection.state) {
    case FolderState::missing:
    case FolderState::empty:
    case FolderState::sources_only:
      break;
    case FolderState::foreign: {
      std::string listed;
      for (size_t i = 0; i < inspection.foreign_entries.size() && i < 10; ++i) {
        listed += (i ? ", " : "") + inspection.foreign_entries[i];
      }
      if (inspection.foreign_entries.size() > 10) {
        listed += ", ...";
      }
      return make_error(ErrorCode::invalid_argument,
                        dir.string() + " is not empty and is not an avps project (it holds " + listed +
                            "); choose an empty or new folder");
    }
    case FolderState::project: {
      // A finished init ends with project.initialized; without it, an earlier init was cut short.
      AVPS_TRY_ASSIGN(auto existing, ledger::Ledger::open(dir, ledger::OpenMode::read_only, clock));
      AVPS_TRY_ASSIGN(std::vector<ledger::Event> events, existing->events());
      for (const ledger::Event& e : events) {
        if (e.kind == "project.initialized") {
          return make_error(ErrorCode::already_exists, dir.string() + " is already an avps project (initialised " +
                                                           e.timestamp + "); use `avps run` or `avps status`");
        }
      }
      resuming = true;
      break;
    }
  }

  fs::path config_path = dir / "avps.json";
  ConfigSources sources{dir, data_dir(), overrides, process_environment()};
  if (!resuming) {
    AVPS_TRY(core::create_directories_durable(dir));
    json project_layer;
    if (fs::exists(config_path)) {
      if (!title.empty()) {
        return make_error(ErrorCode::invalid_argument,
                          config_path.string() + " already exists; edit its \"title\" instead of passing --title");
      }
      AVPS_TRY_ASSIGN(std::string text, core::read_file(config_path));
      Result<json> parsed = core::parse_json(text, config_path.string());
      if (!parsed) {
        return make_error(ErrorCode::configuration, parsed.error().message);
      }
      project_layer = std::move(parsed).value();
      AVPS_TRY(load_config_from(project_layer, sources));
    } else {
      std::string chosen = title.empty() ? dir.filename().string() : title;
      if (chosen.empty() || chosen == "." || chosen == "..") {
        chosen = "Untitled production";
      }
      project_layer = avps_json_template(chosen);
      AVPS_TRY(load_config_from(project_layer, sources));
      AVPS_TRY(core::write_file_atomic(config_path, project_layer.dump(2) + "\n", core::Overwrite::no,
                                       core::Durability::durable));
    }
    if (!fs::exists(dir / "brief.md")) {
      AVPS_TRY(core::write_file_atomic(dir / "brief.md", k_brief_template, core::Overwrite::no,
                                       core::Durability::durable));
    }
    for (const std::string& folder : project_folders()) {
      AVPS_TRY(core::create_directories_durable(dir / folder));
    }
    AVPS_TRY_ASSIGN(auto created, ledger::Ledger::create(dir, clock));
  }

  AVPS_TRY_ASSIGN(std::unique_ptr<Project> project, open(dir, ledger::OpenMode::read_write, overrides, clock));
  ledger::Ledger& ledger = project->ledger();
  AVPS_TRY(ledger.begin_run(resuming ? "init (resumed)" : "init", {{"title", project->config().title}}));
  AVPS_TRY_ASSIGN(std::vector<artifacts::NewArtifact> initial,
                  build_initial_artifacts(project->config(), data_dir()));
  for (artifacts::NewArtifact& artifact : initial) {
    AVPS_TRY_ASSIGN(std::optional<ledger::ArtifactRecord> existing,
                    ledger.find_artifact(artifact.name.filename()));
    if (existing) {
      continue;  // written before an earlier init was cut short
    }
    AVPS_TRY(project->store().write(artifact));
  }
  AVPS_TRY_ASSIGN(std::string config_bytes, core::canonical_json(project->config().document));
  AVPS_TRY(ledger.append(ledger::EventDraft{
      .kind = "project.initialized",
      .body = {{"title", project->config().title}, {"config_sha256", core::sha256_hex(config_bytes)}}}));
  AVPS_TRY(ledger.end_run("DONE", json::object()));
  return project;
}

}  // namespace avps::project
