// What a vision model is shown: an image as itself, a clip as frames sampled with ffmpeg, and a
// clear error (never a call without its frames) when ffmpeg is missing.

#include <catch2/catch.hpp>

#include "avps/backends/frames.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/process.hpp"
#include "support/temp_dir.hpp"

using namespace avps;

TEST_CASE("an image is shown as itself, with its label", "[frames]") {
  testing::TempDir tmp;
  const std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + "not really pixels";
  REQUIRE(core::write_file_atomic(tmp.path() / "S01_SH01_proxy_a01.png", png, core::Overwrite::no,
                                  core::Durability::cached)
              .ok());
  auto images = backends::frames_of(tmp.path() / "S01_SH01_proxy_a01.png", "S01_SH01 proxy render, attempt 1", 4);
  REQUIRE(images.ok());
  REQUIRE(images->size() == 1);
  CHECK(images->front().media_type == "image/png");
  CHECK(images->front().bytes == png);
  CHECK(images->front().label == "S01_SH01 proxy render, attempt 1");
}

TEST_CASE("a file that is neither an image nor a clip is refused", "[frames]") {
  testing::TempDir tmp;
  REQUIRE(core::write_file_atomic(tmp.path() / "notes.txt", "x", core::Overwrite::no, core::Durability::cached).ok());
  auto images = backends::frames_of(tmp.path() / "notes.txt", "notes", 4);
  REQUIRE_FALSE(images.ok());
  CHECK(images.error().code == ErrorCode::unsupported);
}

TEST_CASE("a clip is shown as N frames sampled with ffmpeg, or refused without it", "[frames]") {
  testing::TempDir tmp;
  const auto clip = tmp.path() / "S02_SH03_final_a02.mp4";
  if (!core::on_path("ffmpeg") || !core::on_path("ffprobe")) {
    REQUIRE(core::write_file_atomic(clip, "not a real clip", core::Overwrite::no, core::Durability::cached).ok());
    auto images = backends::frames_of(clip, "S02_SH03 final render, attempt 2", 4);
    REQUIRE_FALSE(images.ok());
    CHECK(images.error().code == ErrorCode::configuration);
    CHECK(images.error().message.find("apt-get install ffmpeg") != std::string::npos);
    return;
  }
  // A 2 s test pattern, 1280 px wide: frames come back scaled to 1024 px, as PNG.
  REQUIRE(core::run_program({"ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                             "testsrc=duration=2:size=1280x720:rate=10", "-pix_fmt", "yuv420p", clip.string()},
                            "making a test clip")
              .ok());
  auto images = backends::frames_of(clip, "S02_SH03 final render, attempt 2", 3);
  INFO((images.ok() ? std::string() : images.error().message));
  REQUIRE(images.ok());
  REQUIRE(images->size() == 3);
  for (const backends::Image& image : *images) {
    CHECK(image.media_type == "image/png");
    REQUIRE(image.bytes.size() > 24);
    CHECK(image.bytes.substr(1, 3) == "PNG");
    // The IHDR width, big-endian at bytes 16..19.
    const auto width = (static_cast<unsigned char>(image.bytes[18]) << 8) | static_cast<unsigned char>(image.bytes[19]);
    CHECK(width == 1024);
  }
  CHECK(images->at(1).label == "S02_SH03 final render, attempt 2, frame 2 of 3");
  CHECK(images->at(0).bytes != images->at(2).bytes);  // the pattern moves: different moments
}

TEST_CASE("a short clip gives every span its frame, and no more frames than it has", "[frames]") {
  if (!core::on_path("ffmpeg") || !core::on_path("ffprobe")) {
    return;  // the case above covers the refusal
  }
  testing::TempDir tmp;
  // 8 frames over 2 s, like the sim's renders: a time-based sampler dropped the last span here.
  const auto clip = tmp.path() / "S01_SH03_proxy_a01.mp4";
  REQUIRE(core::run_program({"ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                             "testsrc=duration=2:size=320x240:rate=4", "-pix_fmt", "yuv420p", clip.string()},
                            "making a test clip")
              .ok());
  for (int count : {1, 2, 3, 4, 8}) {
    auto images = backends::frames_of(clip, "S01_SH03 proxy render, attempt 1", count);
    INFO("count " << count << (images.ok() ? std::string() : ": " + images.error().message));
    REQUIRE(images.ok());
    CHECK(static_cast<int>(images->size()) == count);
  }
  auto all = backends::frames_of(clip, "S01_SH03 proxy render, attempt 1", 20);
  REQUIRE(all.ok());
  CHECK(all->size() == 8);
  CHECK(all->back().label == "S01_SH03 proxy render, attempt 1, frame 8 of 8");
}

TEST_CASE("a clip whose frames were counted when it was probed is not counted again", "[frames]") {
  if (!core::on_path("ffmpeg") || !core::on_path("ffprobe")) {
    return;
  }
  testing::TempDir tmp;
  const auto clip = tmp.path() / "S04_SH01_proxy_a01.mp4";
  REQUIRE(core::run_program({"ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                             "testsrc=duration=2:size=320x240:rate=4", "-pix_fmt", "yuv420p", clip.string()},
                            "making a test clip")
              .ok());
  auto bytes = core::read_file(clip);
  REQUIRE(bytes.ok());
  // Eight frames, noted as two: the noted count is what frames_of samples from (two spans, two
  // frames), which shows that it ran no ffprobe of its own. The same bytes under another name too.
  backends::note_frame_count(*bytes, 2);
  const auto copy = tmp.path() / "copy.mp4";
  REQUIRE(core::write_file_atomic(copy, *bytes, core::Overwrite::no, core::Durability::cached).ok());
  for (const auto& file : {clip, copy}) {
    auto images = backends::frames_of(file, "S04_SH01 proxy render, attempt 1", 4);
    REQUIRE(images.ok());
    CHECK(images->size() == 2);
  }
  // Other bytes are counted by ffprobe: all eight frames are there to sample.
  backends::note_frame_count(*bytes + std::string(1, '\0'), 2);
  const auto other = tmp.path() / "other.mp4";
  REQUIRE(core::run_program({"ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                             "testsrc=duration=2:size=320x240:rate=4:decimals=1", "-pix_fmt", "yuv420p",
                             other.string()},
                            "making another test clip")
              .ok());
  auto images = backends::frames_of(other, "S04_SH02 proxy render, attempt 1", 4);
  REQUIRE(images.ok());
  CHECK(images->size() == 4);
}
