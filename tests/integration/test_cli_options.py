"""Options as DCMTK users write them: the root options after the command, ``--aec``."""

from __future__ import annotations

import json

from clirunner import assert_one_line_error, run_cli

from pacskit.testing.peers import free_port

OUR_AET = "PACSKIT"


def test_root_options_after_the_command_set_our_ae_title_and_port(moving_dcmqrscp, corpus, tmp_path, our_port):
    study = sorted({c.study_uid for c in corpus})[0]
    result = run_cli("get", moving_dcmqrscp.address, "--study-uid", study, "--method", "move",
                     "-o", tmp_path, "-f", "json", "--aet", OUR_AET, "--port", our_port,
                     "--connect-timeout", "5", "-v")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["written"] == sum(c.study_uid == study for c in corpus)


def test_a_root_option_after_the_command_wins_over_one_before_and_the_environment(moving_dcmqrscp, corpus,
                                                                                  tmp_path, our_port):
    study = sorted({c.study_uid for c in corpus})[1]
    result = run_cli("--aet", "STRANGER", "get", moving_dcmqrscp.address, "--study-uid", study,
                     "--method", "move", "-o", tmp_path, "-f", "json", "--aet", OUR_AET, "--port", our_port,
                     env={"PACSKIT_AE_TITLE": "STRANGER", "PACSKIT_PORT": str(free_port())})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["written"] == sum(c.study_uid == study for c in corpus)
    stranger = run_cli("get", moving_dcmqrscp.address, "--study-uid", study, "--method", "move",
                       "-o", tmp_path / "other", "--port", free_port(), env={"PACSKIT_AE_TITLE": "STRANGER"})
    assert_one_line_error(stranger, 24, "register AE title 'STRANGER'")


def test_a_root_option_after_the_command_is_checked_like_before_it(orthanc):
    result = run_cli("find", orthanc.address, "--port", "not-a-number")
    assert result.returncode == 2
    assert "--port" in result.stderr and "Possible options" not in result.stderr


def test_config_after_the_command(orthanc, corpus, tmp_path):
    config = tmp_path / "elsewhere.toml"
    config.write_text(f'[nodes.pacs]\nae_title = "{orthanc.ae_title}"\nhost = "127.0.0.1"\nport = {orthanc.port}\n')
    result = run_cli("find", "pacs", "-f", "json", "--config", config, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert {m["StudyInstanceUID"] for m in json.loads(result.stdout)} == {c.study_uid for c in corpus}


def test_aec_calls_the_node_by_another_ae_title(dcmqrscp, corpus):
    wrong = f"dicom://NOT{dcmqrscp.ae_title}@127.0.0.1:{dcmqrscp.port}"
    refused = run_cli("echo", wrong)
    assert refused.returncode != 0 and "reject" in refused.stderr.lower(), refused.stderr
    for command in (("echo", wrong), ("echo", f"127.0.0.1:{dcmqrscp.port}")):
        result = run_cli(*command, "--aec", dcmqrscp.ae_title, "-f", "json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)[0]["ae_title"] == dcmqrscp.ae_title
    result = run_cli("find", wrong, "--aec", dcmqrscp.ae_title, "-f", "json")
    assert result.returncode == 0, result.stderr
    assert {m["StudyInstanceUID"] for m in json.loads(result.stdout)} == {c.study_uid for c in corpus}


def test_aec_stores_to_a_bare_host_and_port(storescp, corpus_dir):
    result = run_cli("store", corpus_dir, "--to", f"127.0.0.1:{storescp.port}", "--aec", storescp.ae_title,
                     "-f", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["failed"] == 0 and json.loads(result.stdout)["sent"] > 0


def test_aec_is_refused_for_a_dicomweb_url():
    result = run_cli("find", "http://127.0.0.1:1/dicom-web", "--aec", "ANY")
    assert_one_line_error(result, 2, "--aec applies to DICOM nodes")


def test_any_dictionary_keyword_is_a_key_with_one_warning_when_not_standard(orthanc, corpus):
    series = sorted({c.series_uid for c in corpus})[0]
    result = run_cli("find", orthanc.address, "-l", "image", "--series-uid", series, "-f", "json",
                     "-k", "StationName", "-k", "0008,1090", "-k", "00080080", "-k", "SpecificCharacterSet")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert warnings == ["pacskit: warning: StationName, ManufacturerModelName are not standard keys of the "
                        "IMAGE level (PS3.4 C.6): sent, but the PACS may ignore them"], result.stderr
    answers = json.loads(result.stdout)
    assert sorted(a["SOPInstanceUID"] for a in answers) == sorted(
        c.sop_instance_uid for c in corpus if c.series_uid == series)
    assert all(a["InstitutionName"] == "pacskit synthetic hospital" for a in answers)


def test_a_nonstandard_matching_key_is_sent_and_the_answers_checked(orthanc, corpus):
    study = sorted({c.study_uid for c in corpus})[0]
    result = run_cli("find", orthanc.address, "-l", "series", "--study-uid", study, "-f", "json",
                     "-k", "StationName=NO-SUCH-STATION")
    assert result.returncode == 0, result.stderr
    assert "StationName is not a standard key of the SERIES level" in result.stderr
    assert json.loads(result.stdout) == []


def test_a_key_of_a_lower_level_is_still_refused(orthanc):
    result = run_cli("find", orthanc.address, "-l", "study", "-k", "SOPInstanceUID=1.2")
    assert_one_line_error(result, 6, "SOPInstanceUID is not a key of the STUDY level")


def test_a_repeated_study_uid_is_a_list_of_studies(orthanc, dcmqrscp, corpus, tmp_path):
    wanted = sorted({c.study_uid for c in corpus})[:2]
    result = run_cli("find", orthanc.address, "--study-uid", wanted[0], "--study-uid", wanted[1], "-f", "json")
    assert result.returncode == 0, result.stderr
    assert sorted(m["StudyInstanceUID"] for m in json.loads(result.stdout)) == wanted
    got = run_cli("get", dcmqrscp.address, "--study-uid", wanted[0], "--study-uid", wanted[1],
                  "-o", tmp_path, "-f", "json")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["written"] == sum(c.study_uid in wanted for c in corpus)


def test_usage_errors_are_one_line_with_exit_2():
    assert_one_line_error(run_cli("get", "dicom://PEER@127.0.0.1:1", "-f", "csv"), 2, "'csv' is not one of")
    assert_one_line_error(run_cli("find", "dicom://PEER@127.0.0.1:1", "--nope"), 2, "No such option: --nope")
    assert_one_line_error(run_cli("store"), 2, "Missing argument")
    for result in (run_cli("get", "dicom://PEER@127.0.0.1:1", "-f", "csv"), run_cli("find", "--nope")):
        assert "╭" not in result.stderr and "Usage:" not in result.stderr, result.stderr
