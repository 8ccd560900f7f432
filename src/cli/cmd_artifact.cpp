#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>

#include "avps/artifacts/face.hpp"
#include "avps/artifacts/store.hpp"
#include "avps/authoring/import.hpp"
#include "avps/core/canonical_json.hpp"
#include "avps/core/clock.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/hash.hpp"
#include "avps/project/project.hpp"
#include "commands.hpp"

namespace avps::cli {
namespace fs = std::filesystem;

namespace {

struct ArtifactOptions {
  std::string dir;
  std::string name;
  std::vector<std::string> files;  // import: faces one skill writes in one step (BEATS and SCENES)
  std::string reason;
};

// The record NAME designates: a file name (one version) or a stem (its latest version).
Result<ledger::ArtifactRecord> find_record(const ledger::Ledger& ledger, const std::string& name) {
  AVPS_TRY_ASSIGN(std::vector<ledger::ArtifactRecord> records, ledger.artifacts());
  std::optional<ledger::ArtifactRecord> best;
  for (const ledger::ArtifactRecord& r : records) {
    Result<artifacts::ArtifactName> parsed = artifacts::parse_artifact_name(r.name);
    bool matches = r.name == name || (parsed && parsed->stem() == name);
    if (matches && (!best || r.version > best->version)) {
      best = r;
    }
  }
  if (!best) {
    return make_error(ErrorCode::not_found, "no recorded artifact named " + name +
                                                " (give a file name like CHAR_ALEX_LOCK_v002.txt or a stem like "
                                                "CHAR_ALEX_LOCK; `avps log` lists what was recorded)");
  }
  return *best;
}

// A recorded artifact with its face (hash-checked) and canonical JSON (from the object store).
struct Located {
  ledger::ArtifactRecord record;
  std::string face;
  nlohmann::json content;
};

Result<Located> locate(const std::string& dir, const std::string& name) {
  core::SystemClock clock;
  AVPS_TRY_ASSIGN(auto project, project::Project::open(dir, ledger::OpenMode::read_only, {}, clock));
  AVPS_TRY_ASSIGN(ledger::ArtifactRecord record, find_record(project->ledger(), name));
  AVPS_TRY_ASSIGN(std::string face, core::read_file(fs::path(dir) / record.path));
  if (core::sha256_hex(face) != record.face_sha256) {
    return make_error(ErrorCode::corruption, record.path + " changed since the ledger recorded it; run `avps gate`");
  }
  AVPS_TRY_ASSIGN(nlohmann::json content, project->store().load(record));
  return Located{std::move(record), std::move(face), std::move(content)};
}

void run_show(const ArtifactOptions& o, Context& ctx) {
  Result<Located> found = locate(o.dir, o.name);
  if (!found) {
    ctx.fail(found.error());
  } else if (ctx.json) {
    ctx.emit_json(found->content);
  } else {
    std::cout << found->face;
  }
}

// Imports `faces` as the next versions of the artifacts their names designate; prints the outcome.
// `edited_from`: the version an edit started from; when another version was recorded meanwhile
// the import is refused, naming both (checked under the writer lock, so no edit can slip between).
bool import_faces(const std::string& dir, const std::vector<authoring::FaceFile>& faces, const std::string& reason,
                  Context& ctx, const std::optional<std::string>& edited_from = std::nullopt) {
  core::SystemClock clock;
  auto project = project::Project::open(dir, ledger::OpenMode::read_write, {}, clock);
  if (!project) {
    ctx.fail(project.error());
    return false;
  }
  fs::path project_dir = dir;
  auto registry = skills::Registry::load(project::data_dir(), &project_dir);
  if (!registry) {
    ctx.fail(registry.error());
    return false;
  }
  // Everything is checked before anything is written: a refused import leaves the ledger and
  // the project tree exactly as they were.
  Result<authoring::PreparedImport> prepared = authoring::prepare_import(**project, *registry, faces);
  if (!prepared) {
    ctx.fail(prepared.error().code == ErrorCode::invalid_argument ? ExitCode::usage : ExitCode::violation,
             prepared.error().message);
    return false;
  }
  const authoring::PreparedArtifact& edited = prepared->artifacts.front();
  if (edited_from && edited.previous != *edited_from) {
    ctx.fail(ExitCode::violation,
             edited.previous + " was recorded while you edited " + *edited_from +
                 "; nothing was recorded, so that neither change is lost. Compare your edit with " + edited.previous);
    return false;
  }
  // A face equal to the latest version's is not a new version (DESIGN §5). This is also what
  // makes an import killed after its files were complete safe to run again: the writing open has
  // recorded it, and running it again records nothing instead of a duplicate.
  if (!prepared->changes_anything()) {
    std::string paths;
    nlohmann::json unchanged = nlohmann::json::array();
    for (const authoring::PreparedArtifact& a : prepared->artifacts) {
      unchanged.push_back(a.previous_path);
      paths += (paths.empty() ? "" : ", ") + a.previous_path;
    }
    if (ctx.json) {
      ctx.emit_json(
          {{"ok", true}, {"recorded", nullptr}, {"unchanged", unchanged.size() == 1 ? unchanged.front() : unchanged}});
    } else {
      ctx.info("No change: " + paths + (unchanged.size() == 1 ? " already holds" : " already hold") +
               " this face; nothing recorded.");
    }
    return true;
  }
  ledger::Ledger& ledger = (*project)->ledger();
  std::string sources;
  for (const authoring::FaceFile& f : faces) {
    sources += (sources.empty() ? "" : " ") + f.source;
  }
  auto begun =
      ledger.begin_run("artifact import",
                       {{"source", sources}, {"kind", faces.front().name.kind}, {"target", faces.front().name.target}});
  if (!begun) {
    ctx.fail(begun.error());
    return false;
  }
  Result<std::vector<ledger::ArtifactRecord>> records = authoring::record_import(**project, *prepared, reason);
  Result<void> ended =
      ledger.end_run(records ? "DONE" : "ERROR",
                     records ? nlohmann::json::object() : nlohmann::json{{"error", records.error().message}});
  if (!records) {
    ctx.fail(records.error());
    return false;
  }
  if (!ended) {
    ctx.fail(ended.error());
    return false;
  }
  if (ctx.json) {
    nlohmann::json written = nlohmann::json::array();
    for (size_t i = 0, r = 0; i < prepared->artifacts.size(); ++i) {
      const authoring::PreparedArtifact& a = prepared->artifacts[i];
      if (!a.unchanged) {
        written.push_back(
            {{"path", (*records)[r++].path}, {"follows", a.previous}, {"author", a.derived ? "avps" : "human"}});
      }
    }
    ctx.emit_json({{"ok", true},
                   {"recorded", records->front().path},
                   {"follows", prepared->artifacts.front().unchanged ? "" : prepared->artifacts.front().previous},
                   {"author", prepared->artifacts.front().unchanged ? "avps" : "human"},
                   {"artifacts", written},
                   {"judged_by", prepared->judge},
                   {"judged_with", prepared->judged_with},
                   {"recomputed", prepared->recomputed},
                   {"notes", prepared->notes},
                   {"gate", prepared->gate.to_json()}});
    return true;
  }
  for (size_t i = 0, r = 0; i < prepared->artifacts.size(); ++i) {
    const authoring::PreparedArtifact& a = prepared->artifacts[i];
    if (a.unchanged) {
      ctx.info("Unchanged: " + a.previous + " already holds " + (a.source.empty() ? "it" : a.source));
      continue;
    }
    ctx.info("Recorded " + (*records)[r++].path + (a.derived ? " (by avps" : " (human-authored") +
             (a.previous.empty() ? "" : ", follows " + a.previous) + ")" +
             (a.derived ? "" : ", gate " + std::string(gates::verdict_name(prepared->gate.verdict))));
  }
  if (!prepared->judged_with.empty()) {
    std::string with;
    for (const std::string& name : prepared->judged_with) {
      with += (with.empty() ? "" : ", ") + name;
    }
    ctx.info("  judged by " + prepared->judge + "'s gate together with " + with + " as recorded");
  }
  for (const std::string& r : prepared->gate.reasons) {
    ctx.info("  " + r);
  }
  for (const std::string& r : prepared->recomputed) {
    ctx.info("  recomputed: " + r);
  }
  for (const std::string& n : prepared->notes) {
    ctx.info("  note: " + n);
  }
  return true;
}

void run_import(const ArtifactOptions& o, Context& ctx) {
  std::vector<authoring::FaceFile> faces;
  for (const std::string& file : o.files) {
    Result<artifacts::ArtifactName> name = artifacts::parse_artifact_name(fs::path(file).filename().string());
    if (!name) {
      ctx.fail(ExitCode::usage, name.error().message +
                                    "\n(the file's name says which artifact it is; its version is ignored: the import "
                                    "becomes the next version)");
      return;
    }
    Result<std::string> face = core::read_text_file(file);
    if (!face) {
      ctx.fail(face.error());
      return;
    }
    faces.push_back(authoring::FaceFile{*name, std::move(*face), file});
  }
  import_faces(o.dir, faces, o.reason, ctx);
}

void run_edit(const ArtifactOptions& o, Context& ctx) {
  Result<Located> found = locate(o.dir, o.name);
  if (!found) {
    ctx.fail(found.error());
    return;
  }
  const std::string& original = found->face;
  const artifacts::ArtifactName name = artifacts::parse_artifact_name(found->record.name).value();
  // The copy lives outside the project, so a half-finished edit never looks like an artifact.
  std::string pattern = (fs::temp_directory_path() / ("avps-edit-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    ctx.fail(ExitCode::environment, "cannot create a temporary folder for the edit");
    return;
  }
  fs::path copy = fs::path(pattern) / name.filename();
  if (auto written = core::write_file_atomic(copy, original, core::Overwrite::no, core::Durability::cached); !written) {
    ctx.fail(written.error());
    return;
  }
  // Said before the editor opens: whatever happens to this process, the person's work is there.
  std::cerr << "avps: editing a copy of " << found->record.name << " at " << copy.string()
            << " (kept there unless it is recorded)\n";
  const char* editor = std::getenv("VISUAL");
  if (!editor || !*editor) {
    editor = std::getenv("EDITOR");
  }
  std::string command = std::string(editor && *editor ? editor : "vi") + " '" + copy.string() + "'";
  int status = std::system(command.c_str());
  if (status != 0) {
    ctx.fail(ExitCode::environment, "the editor (" + command + ") failed; your copy is kept at " + copy.string());
    return;
  }
  Result<std::string> edited = core::read_text_file(copy);
  if (!edited) {
    ctx.fail(Error{edited.error().code, edited.error().message + "; your edit is kept at " + copy.string()});
    return;
  }
  if (*edited == original) {
    ctx.info("No change to " + name.filename() + "; nothing recorded.");
    fs::remove_all(pattern);
    return;
  }
  if (import_faces(o.dir, {authoring::FaceFile{name, *edited, copy.string()}}, o.reason, ctx, found->record.name)) {
    fs::remove_all(pattern);
  } else if (!ctx.json) {
    std::cerr << "avps: your edit is kept at " << copy.string() << "; fix it and run `avps artifact import "
              << o.dir << " " << copy.string() << " --reason ...`\n";
  }
}

}  // namespace

void setup_artifact(CLI::App& app, Context& ctx) {
  CLI::App* artifact = app.add_subcommand("artifact", "Show, import or edit artifacts");
  artifact->require_subcommand(1);

  auto show_options = std::make_shared<ArtifactOptions>();
  CLI::App* show = artifact->add_subcommand("show", "Print an artifact's face (or --json its canonical JSON)");
  show->add_option("dir", show_options->dir, "Project folder")->required();
  show->add_option("name", show_options->name, "A file name (CHAR_ALEX_LOCK_v002.txt) or a stem (CHAR_ALEX_LOCK: the latest)")
      ->required();
  show->footer("The face is checked against the ledger's hash before it is printed.");
  show->callback([show_options, &ctx]() { run_show(*show_options, ctx); });

  auto import_options = std::make_shared<ArtifactOptions>();
  CLI::App* import = artifact->add_subcommand("import", "Record a human-written face as the next version");
  import->add_option("dir", import_options->dir, "Project folder")->required();
  import->add_option("files", import_options->files,
                     "Face files; each name says which artifact it is. Several only when one skill writes them in "
                     "one step (BEATS_v002.md SCENES_v002.csv)")
      ->required();
  import->add_option("--reason", import_options->reason, "Why a person changed it (recorded)")->required();
  import->footer(
      "The face is parsed (errors name the line and field), validated against the kind's schema and\n"
      "put through the producing skill's gate; a FAIL or STOP verdict is refused. Nothing is recorded\n"
      "unless all of that passes. The new version is marked human-authored, with the reason.\n"
      "A STATE_DIFF brings its scene's next WORLD_STATE (the world before the scene, the diff applied).");
  import->callback([import_options, &ctx]() { run_import(*import_options, ctx); });

  auto edit_options = std::make_shared<ArtifactOptions>();
  CLI::App* edit = artifact->add_subcommand("edit", "Edit the latest face in $VISUAL / $EDITOR and import the result");
  edit->add_option("dir", edit_options->dir, "Project folder")->required();
  edit->add_option("name", edit_options->name, "Artifact stem (CHAR_ALEX_LOCK) or file name")->required();
  edit->add_option("--reason", edit_options->reason, "Why a person changed it (recorded)")->required();
  edit->footer("An unchanged file records nothing; a refused edit is kept so no work is lost.");
  edit->callback([edit_options, &ctx]() { run_edit(*edit_options, ctx); });
}

}  // namespace avps::cli
