// The fold checkpoint's file and the rules that make one usable (docs/formats/checkpoint.md).

#include "avps/engine/fold_checkpoint.hpp"

#include <algorithm>
#include <span>
#include <sstream>

#include "avps/core/byte_codec.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/hash.hpp"
#include "avps/ledger/ledger.hpp"
#include "avps/project/project.hpp"

namespace avps::engine {
namespace fs = std::filesystem;

namespace {

// The first word of a checkpoint's format line.
constexpr std::string_view k_checkpoint_magic = "avps-fold-checkpoint";

// The longest format line a checkpoint has (the magic, a version, and a size and a hash a section).
constexpr size_t k_checkpoint_line_max = 512;

// How a section is named in why it was not used.
std::string section_name(CheckpointSection which) {
  switch (which) {
    case CheckpointSection::fold:
      return "content";
    case CheckpointSection::stale_record:
      return "stale-shot record";
    case CheckpointSection::run_record:
      return "run's record";
  }
  return "section";
}

// Why a section is not usable when its bytes do not match its sha256.
Error damaged(CheckpointSection which) {
  return make_error(ErrorCode::corruption, "its " + section_name(which) + " does not match its sha256: damaged");
}

}  // namespace

fs::path checkpoint_path(const fs::path& project_dir) { return project_dir / ".avps" / "fold_checkpoint"; }

Result<std::string> fold_dependencies(project::Project& project) {
  // The read model's own format (report::k_format_version) is not listed: a change of it that
  // changes what the Book keeps raises k_checkpoint_format_version, as any change of a fold does.
  std::string listed = std::string("avps ") + AVPS_VERSION_STRING + "\ncheckpoint " +
                       std::to_string(k_checkpoint_format_version) + "\nconfig " + project.config().document.dump() +
                       "\n";
  for (const fs::path& root : {project::data_dir(), project.dir()}) {
    for (const char* folder : {"skills", "policies", "schemas"}) {
      std::error_code ec;
      if (!fs::is_directory(root / folder, ec)) {
        continue;
      }
      std::vector<fs::path> files;
      for (fs::recursive_directory_iterator it(root / folder, ec), end; !ec && it != end; it.increment(ec)) {
        if (it->is_regular_file(ec)) {
          files.push_back(it->path());
        }
      }
      if (ec) {
        return make_error(ErrorCode::io_error, "cannot list " + (root / folder).string() + ": " + ec.message());
      }
      std::sort(files.begin(), files.end());
      for (const fs::path& file : files) {
        AVPS_TRY_ASSIGN(std::string bytes, core::read_file(file));
        listed += file.lexically_relative(root).generic_string() + " " + core::sha256_hex(bytes) + "\n";
      }
    }
  }
  return core::sha256_hex(listed);
}

Result<std::variant<UsableCheckpoint, std::string>> UsableCheckpoint::open(project::Project& project,
                                                                          const std::string& dependencies,
                                                                          FoldBytes fold_bytes) {
  using Opened = std::variant<UsableCheckpoint, std::string>;
  Result<core::OpenedFile> opened = core::OpenedFile::open(checkpoint_path(project.dir()));
  if (!opened) {
    return Opened(opened.error().code == ErrorCode::not_found ? std::string("none") : opened.error().message);
  }
  Result<std::string> start = opened->read(0, k_checkpoint_line_max + 1);
  if (!start) {
    return Opened(start.error().message);
  }
  const size_t eol = start->find('\n');
  if (eol == std::string::npos || eol > k_checkpoint_line_max) {
    return Opened(std::string("no format line"));
  }
  UsableCheckpoint checkpoint;
  std::istringstream line(start->substr(0, eol));
  std::string magic;
  int version = 0;
  line >> magic >> version;
  for (size_t i = 0; i < k_checkpoint_sections; ++i) {
    size_t size = 0;
    std::string sha256;
    line >> size >> sha256;
    checkpoint.m_sizes.push_back(size);
    checkpoint.m_sha256.push_back(std::move(sha256));
  }
  std::string rest;
  if (!line || magic != k_checkpoint_magic || version != k_checkpoint_format_version || (line >> rest)) {
    return Opened("not a format " + std::to_string(k_checkpoint_format_version) + " checkpoint");
  }
  uint64_t offset = eol + 1;
  for (size_t size : checkpoint.m_sizes) {
    checkpoint.m_offsets.push_back(offset);
    if (size > opened->size()) {  // refused before a sum of sizes could wrap
      return Opened(std::string("its length is not the one its format line gives: cut short or damaged"));
    }
    offset += size;
  }
  if (offset != opened->size()) {
    return Opened(std::string("its length is not the one its format line gives: cut short or damaged"));
  }
  checkpoint.m_file.emplace(std::move(opened).value());
  if (fold_bytes == FoldBytes::kept) {
    Result<std::string> fold = checkpoint.section(CheckpointSection::fold);
    if (!fold) {
      return Opened(fold.error().message);
    }
    checkpoint.m_fold = std::move(fold).value();
  } else {
    if (Result<void> holds = checkpoint.check(CheckpointSection::fold); !holds) {
      return Opened(holds.error().message);
    }
    // The head is a few short texts and a number: it fits in the section's first k_head_max bytes
    // (a longer one reads as cut short, below, and the checkpoint is not used).
    constexpr size_t k_head_max = size_t{64} << 10;
    const auto fold = static_cast<size_t>(CheckpointSection::fold);
    AVPS_TRY_ASSIGN(checkpoint.m_fold, checkpoint.m_file->read(checkpoint.m_offsets[fold],
                                                               std::min(checkpoint.m_sizes[fold], k_head_max)));
  }
  core::ByteReader head(checkpoint.m_fold);
  checkpoint.m_head.avps_version = head.text();
  checkpoint.m_head.dependencies = head.text();
  checkpoint.m_head.seq = head.i64();
  checkpoint.m_head.hash = head.text();
  checkpoint.m_head.ts = head.text();
  if (!head.ok()) {
    return Opened(std::string("malformed: its fold section is cut short"));
  }
  checkpoint.m_after_head = head.consumed();
  if (fold_bytes == FoldBytes::none) {
    checkpoint.m_fold.clear();
    checkpoint.m_after_head = 0;
  }
  if (checkpoint.m_head.avps_version != AVPS_VERSION_STRING) {
    return Opened("made by avps " + checkpoint.m_head.avps_version);
  }
  if (checkpoint.m_head.dependencies != dependencies) {
    return Opened(std::string("made with other skills, stage graph, schemas, policies or configuration"));
  }
  if (checkpoint.m_head.seq < 1) {
    return Opened("malformed: no event " + std::to_string(checkpoint.m_head.seq));
  }
  ledger::Ledger::EventQuery from_seq;  // its event and the first after it, if any
  from_seq.after_seq = checkpoint.m_head.seq - 1;
  from_seq.limit = 2;
  from_seq.bodies = false;
  AVPS_TRY_ASSIGN(std::vector<ledger::Event> events, project.ledger().events(from_seq));
  if (events.empty() || events.front().seq != checkpoint.m_head.seq || events.front().hash != checkpoint.m_head.hash) {
    return Opened("the ledger's event " + std::to_string(checkpoint.m_head.seq) + " is not the one it was made at");
  }
  checkpoint.m_events_follow = events.size() > 1;
  return Opened(std::move(checkpoint));
}

Result<std::string> UsableCheckpoint::section(CheckpointSection which) const {
  const auto i = static_cast<size_t>(which);
  AVPS_TRY_ASSIGN(std::string bytes, m_file->read(m_offsets[i], m_sizes[i]));
  if (bytes.size() != m_sizes[i] || core::sha256_hex(bytes) != m_sha256[i]) {
    return damaged(which);
  }
  return bytes;
}

Result<void> UsableCheckpoint::check(CheckpointSection which) const {
  const auto i = static_cast<size_t>(which);
  AVPS_TRY_ASSIGN(core::OpenedFile::Digest digest, m_file->sha256(m_offsets[i], m_sizes[i]));
  if (digest.length != m_sizes[i] || digest.sha256 != m_sha256[i]) {
    return damaged(which);
  }
  return ok();
}

void SectionParts::cut() {
  if (m_out.bytes().size() >= k_part_bytes) {
    end_part();
  }
}

std::vector<std::string> SectionParts::take() {
  if (!m_out.bytes().empty()) {
    end_part();
  }
  return std::move(m_parts);
}

void SectionParts::end_part() {
  if (m_sink) {
    m_sink(m_out.bytes());
    m_out.clear();
    return;
  }
  std::string part = m_out.take();
  part.shrink_to_fit();
  m_parts.push_back(std::move(part));
  m_out = core::ByteWriter();
}

CheckpointWriter::CheckpointWriter(fs::path project_dir, core::AtomicFile spill)
    : m_project_dir(std::move(project_dir)), m_spill(std::move(spill)) {}

Result<CheckpointWriter> CheckpointWriter::create(const fs::path& project_dir) {
  AVPS_TRY_ASSIGN(core::AtomicFile spill,
                  core::AtomicFile::create(checkpoint_path(project_dir).string() + ".spill", core::Durability::cached));
  return CheckpointWriter(project_dir, std::move(spill));
}

void CheckpointWriter::write(CheckpointSection which, std::string_view part) {
  const auto section = static_cast<size_t>(which);
  if (m_failed || part.empty()) {
    return;
  }
  if (section < m_section) {  // the spill holds the sections one after another, in their order
    m_failed = make_error(ErrorCode::invalid_argument, "a checkpoint's section " + std::to_string(section) +
                                                           " written after section " + std::to_string(m_section));
    return;
  }
  m_section = section;
  if (Result<void> written = m_spill->write(part); !written) {
    m_failed = written.error();
    return;
  }
  m_spilled[section] += part.size();
}

SectionParts::Sink CheckpointWriter::sink(CheckpointSection which) {
  return [this, which](std::string_view part) { write(which, part); };
}

void CheckpointWriter::set_head(CheckpointSection which, std::string head) {
  m_heads[static_cast<size_t>(which)] = std::move(head);
}

Result<size_t> CheckpointWriter::commit() {
  if (m_failed) {
    return *m_failed;
  }
  // The spill is read back twice through one buffer: for each section's sha256, which the format
  // line before them carries, then to copy the sections after it.
  AVPS_TRY_ASSIGN(core::OpenedFile spilled, core::OpenedFile::open(m_spill->temp_path()));
  std::string buffer(SectionParts::k_part_bytes, '\0');
  auto each_chunk = [&](uint64_t offset, uint64_t size, auto&& take) -> Result<void> {
    for (uint64_t done = 0; done < size;) {
      const auto want = static_cast<size_t>(std::min<uint64_t>(buffer.size(), size - done));
      AVPS_TRY_ASSIGN(size_t got, spilled.read_into(offset + done, std::span<char>(buffer.data(), want)));
      if (got != want) {
        return make_error(ErrorCode::io_error, "the checkpoint's spill file " + m_spill->temp_path().string() +
                                                   " was cut short while it was written");
      }
      AVPS_TRY(take(std::string_view(buffer.data(), got)));
      done += got;
    }
    return ok();
  };
  std::string line = std::string(k_checkpoint_magic) + " " + std::to_string(k_checkpoint_format_version);
  size_t bytes = 0;
  uint64_t offset = 0;
  for (size_t i = 0; i < k_checkpoint_sections; ++i) {
    core::Sha256 digest;
    digest.update(m_heads[i]);
    AVPS_TRY(each_chunk(offset, m_spilled[i], [&digest](std::string_view chunk) -> Result<void> {
      digest.update(chunk);
      return ok();
    }));
    const size_t size = m_heads[i].size() + static_cast<size_t>(m_spilled[i]);
    line += " " + std::to_string(size) + " " + digest.hex();
    bytes += size;
    offset += m_spilled[i];
  }
  line += "\n";
  AVPS_TRY_ASSIGN(core::AtomicFile file,
                  core::AtomicFile::create(checkpoint_path(m_project_dir), core::Durability::durable));
  AVPS_TRY(file.write(line));
  offset = 0;
  for (size_t i = 0; i < k_checkpoint_sections; ++i) {
    AVPS_TRY(file.write(m_heads[i]));
    AVPS_TRY(each_chunk(offset, m_spilled[i], [&file](std::string_view chunk) { return file.write(chunk); }));
    offset += m_spilled[i];
  }
  AVPS_TRY(file.commit(core::Overwrite::yes));
  return line.size() + bytes;
}

void write_checkpoint_head(core::ByteWriter& out, const CheckpointHead& head) {
  out.text(head.avps_version);
  out.text(head.dependencies);
  out.i64(head.seq);
  out.text(head.hash);
  out.text(head.ts);
}

}  // namespace avps::engine
