#pragma once
// The production report as one self-contained HTML page: inline CSS, inline SVG charts, one small
// inline script (sorting, filtering and paging of long tables; the page reads fine without it), no
// network: a Content-Security-Policy of default-src 'none' forbids every fetch, so the page opens
// from file://, a CI artifact or a mail attachment alike. Sections (each an element with a stable
// id, which tests and users can rely on): summary, spend, cost, qc, loops, contact, scenes, runs.
//
// Threading: render_html is a pure function; gather_frames runs its own threads, joined before it
// returns.

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "avps/core/result.hpp"

namespace avps::report {

/// What the page shows beside the model.
struct PageAssets {
  /// shot id -> an image of it as a data: URI (a frame of its latest render, or its storyboard).
  std::map<std::string, std::string> frames;
  /// shot id -> where that image came from ("media/S01_SH01_final_a01.mp4", a STORYBOARD face).
  std::map<std::string, std::string> frame_sources;
  /// The project folder as the page links to it: "../" for a page under reports/, or a path.
  std::string project_href = "../";
  /// Said in the header when the snapshot was read while a run was writing.
  std::string live_note;
};

/// One frame per shot of the model for the contact sheet, into `assets`: its latest render's frame
/// a second in (the middle of a shorter planned shot; its first frame if the clip is shorter
/// still), else its storyboard frame, each scaled to 320 px wide as JPEG by ffmpeg (a few dozen
/// clips per ffmpeg process, `jobs` processes at once). Frames are kept in `cache_dir`/frames
/// (none when empty) named by the source's recorded content hash, so each file is read by ffmpeg
/// once across reports and projects. Without ffmpeg only storyboard frames are shown, as they are.
/// A file that cannot be read leaves its shot without a frame; the page says so. Never fails.
void gather_frames(const std::filesystem::path& project_dir, const nlohmann::json& model, int jobs, PageAssets& assets,
                   const std::filesystem::path& cache_dir);

/// Where frames are kept between reports: $AVPS_CACHE_DIR, else $XDG_CACHE_HOME/avps, else
/// ~/.cache/avps; empty when none is set.
std::filesystem::path frame_cache_dir();

/// The page for a read model's JSON (report::to_json).
std::string render_html(const nlohmann::json& model, const PageAssets& assets);

/// `text` with &, <, >, " and ' escaped for HTML text and attribute values.
std::string html_escape(const std::string& text);

}  // namespace avps::report
