#include "avps/report/report.hpp"

#include "avps/artifacts/face.hpp"
#include "avps/artifacts/store.hpp"
#include "avps/project/project.hpp"
#include "avps/report/html.hpp"
#include "avps/report/read_model.hpp"

namespace avps::report {

Result<ReportPage> make_report(project::Project& project, const ReportOptions& options) {
  AVPS_TRY_ASSIGN(ProjectView view, read_project(project));
  ReportPage page;
  page.model = to_json(view);
  PageAssets assets;
  assets.project_href = options.project_href;
  assets.live_note = options.live_note;
  if (options.frames) {
    gather_frames(project.dir(), page.model, options.jobs, assets, options.frame_cache);
  }
  page.html = render_html(page.model, assets);
  return page;
}

Result<ledger::ArtifactRecord> record_made(project::Project& project, const std::string& kind,
                                           const nlohmann::json& content, const std::string& face,
                                           const std::string& command, const std::string& notes) {
  // The store writes what it is given: the content is checked against its kind's schema first.
  AVPS_TRY_ASSIGN(artifacts::FaceCodec codec, artifacts::FaceCodec::load(project::data_dir() / "schemas", kind));
  if (std::vector<core::SchemaIssue> issues = codec.schema().validate(content); !issues.empty()) {
    return make_error(ErrorCode::schema_violation,
                      "the " + kind + " to record breaks its schema: " + core::format_schema_issues(kind, issues));
  }
  ledger::Ledger& ledger = project.ledger();
  AVPS_TRY_ASSIGN(artifacts::ArtifactName name, project.store().next_name(kind, ""));
  AVPS_TRY(ledger.begin_run(command, nlohmann::json::object()));
  ledger::LogRow row;
  row.skill_name = command;
  row.outcome = "DONE";
  row.regen_count = "0";
  row.estimated_cost = "0.000000";
  row.actual_cost = "0.000000";
  row.artifact_output = name.filename();
  row.notes = notes;
  Result<ledger::ArtifactRecord> record = project.store().write(artifacts::NewArtifact{
      .name = name, .content = content, .face = face, .producer = "avps " + command, .row = row});
  AVPS_TRY(ledger.end_run(record ? "DONE" : "ERROR",
                          record ? nlohmann::json::object() : nlohmann::json{{"error", record.error().message}}));
  return record;
}

Result<ledger::ArtifactRecord> record_report(project::Project& project, const ReportPage& page) {
  return record_made(project, "REPORT", page.model, page.html, "report",
                     "production report as of event " + page.model["as_of"]["seq"].dump());
}

}  // namespace avps::report
