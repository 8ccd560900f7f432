#pragma once
// `avps report`: the read model and its page, and the page recorded as a REPORT artifact.
//
// Threading: one call at a time per Project (the Project's own rule).

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "avps/core/result.hpp"
#include "avps/ledger/ledger.hpp"

namespace avps::project {
class Project;
}

namespace avps::report {

struct ReportOptions {
  bool frames = true;                 ///< take a frame of each shot for the contact sheet (ffmpeg)
  int jobs = 2;                       ///< ffmpeg processes at once
  std::string project_href = "../";   ///< the project folder as the page links to it
  std::string live_note;              ///< said in the header: the snapshot was read while a run wrote
  std::filesystem::path frame_cache;  ///< where frames are kept between reports (gather_frames)
};

struct ReportPage {
  nlohmann::json model;  ///< report::to_json of the project
  std::string html;
};

/// Reads the project (open read-only or not) and makes its page.
[[nodiscard]] Result<ReportPage> make_report(project::Project& project, const ReportOptions& options);

/// Records `content` and its `face` as the next version of `kind` (a kind with no target, made by
/// avps from the record: REPORT, CUT), after checking `content` against the kind's schema, in a run
/// of its own (`command`) with its RUN_LOG row (`notes`). The project must be open read-write.
[[nodiscard]] Result<ledger::ArtifactRecord> record_made(project::Project& project, const std::string& kind,
                                                         const nlohmann::json& content, const std::string& face,
                                                         const std::string& command, const std::string& notes);

/// Records `page` as the next REPORT version (reports/REPORT_v###.html, its JSON the model), in a
/// run of its own (command "report") with its RUN_LOG row. The project must be open read-write.
[[nodiscard]] Result<ledger::ArtifactRecord> record_report(project::Project& project, const ReportPage& page);

}  // namespace avps::report
