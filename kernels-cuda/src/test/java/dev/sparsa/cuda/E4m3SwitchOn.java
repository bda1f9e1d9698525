package dev.sparsa.cuda;

import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * For the GPU suites of the e4m3 kernels: sets {@link KernelChoice#E4M3_PROPERTY} to {@code true} for
 * the test class (a suite checks the kernels, so it runs them even where the switch is off) and
 * restores the value it found afterwards.
 */
final class E4m3SwitchOn implements BeforeAllCallback, AfterAllCallback {
    private static final ExtensionContext.Namespace NS = ExtensionContext.Namespace.create(E4m3SwitchOn.class);
    private static final String NONE = "\0unset";

    @Override
    public void beforeAll(ExtensionContext context) {
        String was = KernelChoiceTest.setE4m3Switch("true");
        context.getStore(NS).put("was", was == null ? NONE : was);
    }

    @Override
    public void afterAll(ExtensionContext context) {
        String was = context.getStore(NS).get("was", String.class);
        KernelChoiceTest.setE4m3Switch(NONE.equals(was) ? null : was);
    }
}
