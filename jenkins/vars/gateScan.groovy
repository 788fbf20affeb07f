// gateScan: gate container images with buildgate from a Jenkins pipeline.
//
// It runs the gate-jenkins binary, publishes its JUnit report (junit), its
// SARIF report (Warnings NG: recordIssues), archives every report, and sets
// the build result from the binary's exit code:
//   0  the images pass                   -> result unchanged
//   1  the policy stops an image         -> FAILURE (or UNSTABLE with onStop: 'UNSTABLE')
//   2  error (gate down, timeout, ...)   -> FAILURE, with the binary's ERROR line
//
// Use this directory (jenkins/) as a shared library (Library Path "jenkins/"):
//
//   withCredentials([string(credentialsId: 'buildgate-token', variable: 'GATE_TOKEN')]) {
//       gateScan(gate: 'https://gate.example', image: 'registry.example/team/app:1.2', dockerfile: 'Dockerfile')
//   }
//
// Parameters; one of image, imagesFile or sbom is required:
//   gate            the gate's URL (default: env.GATE_URL)
//   credentialsId   a secret-text credential holding the token; without it
//                   env.GATE_TOKEN must be set (withCredentials). The token is
//                   never put on the command line.
//   image           registry reference, docker-archive:PATH, oci-archive:PATH,
//                   oci-dir:PATH or docker:NAME
//   imagesFile      an Anchore plugin anchore_images file: IMAGE [DOCKERFILE] a line
//   sbom            an SBOM file to evaluate instead of an image
//   platform        the image of a multi-platform index, e.g. 'linux/arm64'
//                   (pull credentials of this run: GATE_REGISTRY_AUTH=USER:PASSWORD
//                   through withCredentials, or a DOCKER_CONFIG file; never a flag)
//   vex             an OpenVEX or CycloneDX VEX document applied to this evaluation
//   dockerfile, policy, tag, timeout ('15m'), failOn ('stop'|'warn'|'new'|'none': report only),
//   onError ('fail'|'pass'), annotations (a map)
//   baseline        'auto' (in a pull request build: the last image gated on
//                   CHANGE_TARGET; else the Dockerfile's final FROM), an image
//                   reference, a digest, or 'none' (default); with failOn: 'new'
//                   only the STOP findings the baseline lacks fail the build
//   forceAnalyze    true: the gate analyses the image again even when it has it
//   autoSubscribe   true: subscribe the image's tag to tag updates on the gate
//                   (needs a token of role admin; otherwise a line says why)
//   caCert          a PEM file of CA certificates to trust for the gate's TLS
//   onStop          build result when the policy stops an image: 'FAILURE' (default) or 'UNSTABLE'
//   abortOnFailure  true (default): a FAILURE stops the pipeline (error);
//                   false: only the build result is set
//   out             report directory in the workspace (default 'buildgate-reports')
//   binary          the gate-jenkins executable (default 'gate-jenkins' on the PATH)
//   id              Warnings NG id of the SARIF results (default 'buildgate'); set
//                   it when a build calls gateScan more than once
//
// Needs the Pipeline: Basic Steps, JUnit, Warnings NG and Credentials Binding
// plugins, and gate-jenkins on the agent.
//
// Returns a map of gate-jenkins' buildgate-result.json: status (the exit
// code), verdict ('go', 'warn', 'stop' or 'error'; the worst image's), exit_code,
// stop_count, new_stop_count, warn_count, allowlisted_count, reports (format
// to path: junit, sarif, gitlab, markdown, json; one image) and images (each
// image's result, with its own reports). Without the file (gate-jenkins
// stopped early) the map holds status and verdict 'error'.
def call(Map args = [:]) {
    if (!isUnix()) {
        error('gateScan needs a Unix agent (it runs the gate-jenkins binary with sh)')
    }
    String out = args.out ?: 'buildgate-reports'
    String lineFile = "${out}/buildgate-result.txt"
    String resultFile = "${out}/buildgate-result.json"
    String script = shellScript(args, out, lineFile)

    int status
    if (args.credentialsId) {
        withCredentials([string(credentialsId: args.credentialsId, variable: 'GATE_TOKEN')]) {
            status = sh(returnStatus: true, script: script)
        }
    } else {
        status = sh(returnStatus: true, script: script)
    }
    String line = fileExists(lineFile) ? readFile(lineFile).trim() : ''
    Map result = fileExists(resultFile) ? parseResult(readFile(resultFile)) : [verdict: 'error', images: []]
    result.status = status

    // With a verdict (0 or 1) the reports must exist: a missing one fails the
    // build. After an error there may be none, and the error says why.
    boolean verdict = status == 0 || status == 1
    junit(allowEmptyResults: !verdict, skipMarkingBuildUnstable: true,
          testResults: "${out}/**/buildgate.junit.xml")
    recordIssues(tool: sarif(pattern: "${out}/**/buildgate.sarif", id: args.id ?: 'buildgate', name: 'buildgate'))
    archiveArtifacts(artifacts: "${out}/**", allowEmptyArchive: true)

    switch (status) {
        case 0:
            break
        case 1:
            String why = line ?: "buildgate: FAIL: the policy stopped the image; see ${out}/buildgate.md"
            if ((args.onStop ?: 'FAILURE').toString().toUpperCase() == 'UNSTABLE') {
                unstable(why)
            } else {
                fail(args, why)
            }
            break
        default:
            fail(args, line ?: "buildgate: ERROR: gate-jenkins exited with status ${status}")
    }
    return result
}

// parseResult reads buildgate-result.json into plain maps and lists.
@NonCPS
Map parseResult(String json) {
    return new groovy.json.JsonSlurperClassic().parseText(json) as Map
}

// fail marks the build FAILURE and, unless abortOnFailure is false, stops it.
def fail(Map args, String why) {
    if (args.abortOnFailure == false) {
        currentBuild.result = 'FAILURE'
        echo(why)
    } else {
        error(why)
    }
}

// shellScript builds the sh script: the quoted gate-jenkins command, its
// stderr (the verdict line) kept in lineFile and shown in the log.
@NonCPS
String shellScript(Map args, String out, String lineFile) {
    List<String> cmd = [args.binary ?: 'gate-jenkins', '--out', out]
    Map flags = [
        '--gate': args.gate, '--image': args.image, '--images-file': args.imagesFile, '--sbom': args.sbom,
        '--dockerfile': args.dockerfile, '--policy': args.policy, '--vex': args.vex, '--platform': args.platform, '--tag': args.tag, '--timeout': args.timeout,
        '--fail-on': args.failOn, '--on-error': args.onError, '--baseline': args.baseline,
        '--ca-cert': args.caCert
    ]
    flags.each { flag, value ->
        if (value != null && value.toString() != '') {
            cmd.add(flag)
            cmd.add(value.toString())
        }
    }
    if (args.forceAnalyze) {
        cmd.add('--force')
    }
    if (args.autoSubscribe) {
        cmd.add('--subscribe')
    }
    (args.annotations ?: [:]).each { k, v ->
        cmd.add('--annotation')
        cmd.add("${k}=${v}".toString())
    }
    String command = cmd.collect { quote(it) }.join(' ')
    // Jenkins runs sh with -e: turn it off to keep the status and the line.
    return "set +e\n" +
        "mkdir -p ${quote(out)}\n" +
        "rm -f ${quote(out + '/buildgate-result.json')}\n" +
        "${command} 2>${quote(lineFile)}\n" +
        "rc=\$?\n" +
        "cat ${quote(lineFile)} >&2\n" +
        "exit \$rc\n"
}

// quote quotes a word for sh.
@NonCPS
String quote(String s) {
    return "'" + s.replace("'", "'\\''") + "'"
}
