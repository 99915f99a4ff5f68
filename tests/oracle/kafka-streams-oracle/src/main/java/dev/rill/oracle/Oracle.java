package dev.rill.oracle;

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * Kafka Streams as the oracle of the DSL: a long-lived process that reads one JSON case per
 * line on stdin and writes one JSON result per line on stdout, in the same order.
 *
 * <p>A case is {@code {"topology": {"op": ..., ...}, "inputs": [{"topic", "key", "value",
 * "timestamp"}, ...]}}; its result is {@code {"outputs": [{"key", "value", "timestamp"},
 * ...]}}, every record written to the topic {@code output} in order, or {@code {"error":
 * "..."}} when the case cannot be built or run (the process goes on with the next case). See
 * {@link Topologies} for the operations and {@link CaseRunner} for how a case runs. The
 * process ends at the end of its input. docs/oracle.md describes the format.
 */
public final class Oracle {
    private Oracle() {}

    /** Reads cases from stdin until its end, answering each on stdout. */
    public static void main(final String[] args) throws IOException {
        final ObjectMapper json = new ObjectMapper();
        final CaseRunner runner = new CaseRunner();
        try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
             BufferedWriter out = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null) {
                if (line.isBlank()) {
                    continue;
                }
                out.write(json.writeValueAsString(answer(json, runner, line)));
                out.newLine();
                out.flush();
            }
        } finally {
            runner.close();
        }
    }

    /** The result of one case line: its outputs, or the reason it could not run. */
    static ObjectNode answer(final ObjectMapper json, final CaseRunner runner, final String line) {
        try {
            final JsonNode testCase = json.readTree(line);
            return runner.run(testCase, json.createObjectNode());
        } catch (final Exception | LinkageError | AssertionError e) {
            final ObjectNode error = json.createObjectNode();
            error.put("error", describe(e));
            return error;
        }
    }

    /** The class and message of an exception and of its causes, on one line. */
    static String describe(final Throwable e) {
        final StringBuilder text = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (text.length() > 0) {
                text.append(" caused by ");
            }
            text.append(t.getClass().getName());
            if (t.getMessage() != null) {
                text.append(": ").append(t.getMessage().replace('\n', ' '));
            }
        }
        return text.toString();
    }
}
